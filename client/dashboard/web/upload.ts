/**
 * Upload a model from the page: drop an .onnx file (or pick one), name it, choose one-click or review,
 * and it streams through POST /api/deployments, the route the CLI uses, with a progress bar. When the
 * API has started the run, the page moves to it.
 */
import { html } from 'htm/preact';
import { useRef, useState } from 'preact/hooks';
import { isValidName } from '../../../lib/names';
import type { DeployStarted } from '../../sdk/types';
import { uploadModel } from './api';
import { bytes } from './format';
import { deploymentHref, navigate } from './router';

/** A model name the API accepts, made from a file name: `My Model v2.onnx` → `my-model-v2`. */
export function modelNameFromFile(fileName: string): string {
  return fileName
    .replace(/\.onnx$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63);
}

type Progress = { sent: number; total: number };

export function UploadCard() {
  const [file, setFile] = useState<File | undefined>(undefined);
  const [name, setName] = useState('');
  const [mode, setMode] = useState<'one-click' | 'review'>('one-click');
  const [over, setOver] = useState(false);
  const [progress, setProgress] = useState<Progress | undefined>(undefined);
  const [state, setState] = useState<'idle' | 'uploading' | 'done'>('idle');
  const [error, setError] = useState<string | undefined>(undefined);
  const input = useRef<HTMLInputElement>(null);

  const choose = (f: File | undefined) => {
    if (!f) return;
    setFile(f);
    setName(modelNameFromFile(f.name));
    setProgress(undefined);
    setState('idle');
    setError(undefined);
  };
  const nameOk = isValidName('model', name);

  const start = async (e: Event) => {
    e.preventDefault();
    if (!file || !nameOk || state === 'uploading') return;
    setState('uploading');
    setError(undefined);
    setProgress({ sent: 0, total: file.size });
    try {
      const started = await uploadModel<DeployStarted>(file, { name, mode }, (sent, total) =>
        setProgress({ sent, total }),
      ).done;
      setProgress({ sent: file.size, total: file.size });
      setState('done');
      navigate(deploymentHref(started.deploymentId));
    } catch (err) {
      setState('idle');
      setError((err as Error).message);
    }
  };

  const pct = progress && progress.total > 0 ? Math.floor((100 * progress.sent) / progress.total) : 0;
  return html`<form class="card upload" onSubmit=${start}>
    <b>Deploy a model</b>
    <div
      class=${`drop${over ? ' over' : ''}`}
      onDragOver=${(e: DragEvent) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave=${() => setOver(false)}
      onDrop=${(e: DragEvent) => {
        e.preventDefault();
        setOver(false);
        choose(e.dataTransfer?.files[0]);
      }}
    >
      ${file ? html`<span class="file">${file.name}</span> (${bytes(file.size)})` : 'Drop an .onnx file here, or'}
      <label class="pick">
        ${file ? 'choose another' : 'choose a file'}
        <input ref=${input} type="file" accept=".onnx" onChange=${(e: Event) => choose((e.target as HTMLInputElement).files?.[0])} />
      </label>
    </div>
    <div class="fields">
      <label>name <input name="model-name" value=${name} onInput=${(e: Event) => setName((e.target as HTMLInputElement).value)} /></label>
      <label>mode
        <select name="mode" value=${mode} onChange=${(e: Event) => setMode((e.target as HTMLSelectElement).value as 'one-click' | 'review')}>
          <option value="one-click">one-click (the best plan, no waiting)</option>
          <option value="review">review (wait for an approval)</option>
        </select>
      </label>
      <button type="submit" disabled=${!file || !nameOk || state === 'uploading'}>Deploy</button>
    </div>
    ${file && name && !nameOk && html`<p class="err">Model names use lower-case letters, digits, "_", "." or "-" (1-63, starting with a letter or digit).</p>`}
    ${
      progress &&
      html`<div class="progress">
        <progress id="upload-progress" value=${progress.sent} max=${progress.total}></progress>
        <span id="upload-status">${state === 'done' ? 'uploaded' : 'uploading'} ${bytes(progress.sent)} of ${bytes(progress.total)} (${pct}%)</span>
      </div>`
    }
    ${error && html`<p class="err" role="alert">${error}</p>`}
  </form>`;
}
