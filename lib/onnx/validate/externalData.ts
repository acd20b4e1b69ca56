/**
 * External data: a location must stay inside the upload (relative, no '..', no symlink on the way), and with
 * the upload's folder at hand, the file must be there and long enough for the offset and length declared.
 */
import { lstatSync } from 'node:fs';
import * as path from 'node:path';
import type { TensorProto } from '../model';
import { externalDataEntry } from '../tensor';
import { ModelValidationError } from './errors';

export interface ExternalEntries {
  location: string;
  offset?: number;
  length?: number;
}

/** A tensor's external_data entries, checked: a location inside the upload, offset and length byte counts. */
export function checkExternalEntries(t: TensorProto, what: string): ExternalEntries {
  const location = externalDataEntry(t, 'location');
  if (!location) {
    throw new ModelValidationError('external-data-path', `${what} keeps its data externally but names no location`);
  }
  const absolute =
    location.startsWith('/') || location.startsWith('\\') || /^[A-Za-z]:/.test(location) || location.startsWith('~');
  const escapes = location.split(/[\\/]/).some((segment) => segment === '..');
  if (absolute || escapes || location.includes('\0')) {
    throw new ModelValidationError(
      'external-data-path',
      `${what} reads external data from '${location}', outside the model's folder: external data locations must be ` +
        `relative paths without '..'`,
    );
  }
  const numberEntry = (key: string): number | undefined => {
    const raw = externalDataEntry(t, key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) {
      throw new ModelValidationError(
        'external-data-path',
        `${what} has external data ${key} '${raw}', which is not a byte count`,
      );
    }
    return n;
  };
  return { location, offset: numberEntry('offset'), length: numberEntry('length') };
}

export interface ExternalFile {
  /** As the model names it (relative to the model's folder). */
  location: string;
  sizeBytes: number;
}

/**
 * With the model's folder at hand: every referenced file exists as a regular file reached through no symlink,
 * and holds each tensor's [offset, offset+length). Returns the files, each once, in the order first named.
 */
export function checkExternalFiles(
  references: ReadonlyArray<{ location: string; offset: number; length: number; what: string }>,
  modelDir: string,
): ExternalFile[] {
  const files = new Map<string, ExternalFile>();
  for (const ref of references) {
    let file = files.get(ref.location);
    if (!file) {
      file = { location: ref.location, sizeBytes: regularFileSize(modelDir, ref.location, ref.what) };
      files.set(ref.location, file);
    }
    if (ref.offset + ref.length > file.sizeBytes) {
      throw new ModelValidationError(
        'external-data-short',
        `${ref.what} reads bytes ${ref.offset} to ${ref.offset + ref.length} of '${ref.location}', ` +
          `but that file is only ${file.sizeBytes} bytes long`,
      );
    }
  }
  return [...files.values()];
}

/** lstat each step from the model's folder down, so a symlink anywhere on the way is caught, not followed. */
function regularFileSize(modelDir: string, location: string, what: string): number {
  const steps = location.split(/[\\/]/).filter((s) => s !== '' && s !== '.');
  let at = modelDir;
  for (const [i, step] of steps.entries()) {
    at = path.join(at, step);
    let info: ReturnType<typeof lstatSync>;
    try {
      info = lstatSync(at);
    } catch {
      throw new ModelValidationError(
        'external-data-missing',
        `${what} reads external data from '${location}', which is not part of the upload`,
      );
    }
    if (info.isSymbolicLink()) {
      throw new ModelValidationError(
        'external-data-path',
        `${what} reads external data from '${location}', and '${steps.slice(0, i + 1).join('/')}' is a symbolic link: ` +
          'external data must be plain files inside the upload',
      );
    }
    const last = i === steps.length - 1;
    if (last ? !info.isFile() : !info.isDirectory()) {
      throw new ModelValidationError(
        'external-data-missing',
        `${what} reads external data from '${location}', which is not a regular file in the upload`,
      );
    }
    if (last) return info.size;
  }
  throw new ModelValidationError(
    'external-data-path',
    `${what} names external data location '${location}', which is empty`,
  );
}
