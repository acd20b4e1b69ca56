/**
 * The dashboard: two small pages that render from the JSON API in the browser and refresh themselves.
 * Charts are inline SVG, so the page needs nothing from outside this server.
 */
import type { FerryConfig } from '../../lib/config';

const style = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#123;color:#fff;padding:12px 24px}header a{color:#9cf}
main{padding:20px 24px;max-width:1100px}
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:6px 10px;border-bottom:1px solid #e3e6eb;text-align:left}
.card{background:#fff;border:1px solid #e3e6eb;border-radius:6px;padding:14px 16px;margin:0 0 16px}
.stages{display:flex;gap:8px}.stage{flex:1;padding:8px;border-radius:4px;background:#eef0f3;text-align:center}
.done{background:#d7f5dd}.running{background:#fff3c4}.failed{background:#ffd9d6}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px}svg{width:100%;height:160px;background:#fff}
.bars{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin:8px 0}.bar{display:flex;align-items:center;gap:6px;margin:3px 0;font-size:12px}
.split{display:flex;height:22px;border-radius:4px;overflow:hidden;margin:6px 0}.split div{color:#fff;font-size:12px;padding:3px 6px;white-space:nowrap;overflow:hidden}
.bar span.l{width:210px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.bar div{height:12px;border-radius:2px}.rej{color:#999}.opt td,.opt th{font-size:12px;white-space:nowrap;padding:4px 6px}.opt td.w{white-space:normal;min-width:120px}.na{color:#777;font-size:12px}
button{padding:4px 10px;cursor:pointer}code{background:#eef0f3;padding:1px 4px;border-radius:3px}.err{color:#b00}`;

const helpers = `
const esc=s=>String(s??'').replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
async function getJson(u,o){const r=await fetch(u,o);const b=await r.json();if(!r.ok)throw new Error(b.error||r.statusText);return b}
function fmtB(n){return n<1024?n+' B':n<1048576?(n/1024).toFixed(1)+' KiB':(n/1048576).toFixed(2)+' MiB'}
function fmtMs(ms){return ms<1?(ms*1000).toFixed(0)+' µs':ms.toFixed(2)+' ms'}
function bars(title,rows,value,fmt,color){const max=Math.max(...rows.map(value),1e-12);
  return '<div><b>'+title+'</b>'+rows.map(r=>'<div class="bar"><span class="l'+(r.withinBudget?'':' rej')+'">'+esc(r.id)+'</span><div style="width:'+(200*value(r)/max).toFixed(1)+'px;background:'+(r.withinBudget?color:'#ccc')+'"></div><span>'+fmt(value(r))+'</span></div>').join('')+'</div>'}
function optimizationCard(s){const t=s.optimization,waiting=s.phase==='awaiting-approval',chosen=s.chosenPlan&&s.chosenPlan.plan;
  const m=t.candidates.filter(c=>c.state==='measured'),na=t.candidates.filter(c=>c.state!=='measured');
  let h='<div class="card"><b>Optimization plans</b> — every candidate measured against the original in one run'+(waiting?'; waiting for approval until '+esc(s.approvalDeadline):'')+
  '<div class="bars">'+bars('p50 latency, batch 1',m,r=>r.row.batch1.p50Ms,fmtMs,'#2a6fdb')+bars('size on disk',m,r=>r.row.sizeBytes,fmtB,'#1a9850')+'</div>'+
  '<table class="opt"><tr><th>candidate</th><th></th><th>size</th><th>gzip</th><th>load</th><th>p50 b1</th><th>p95 b1</th><th>p50 large batch</th><th>peak RSS</th><th>cosine</th><th>top-1</th><th>$/1M</th><th></th></tr>'+
  m.map(c=>{const r=c.row,lb=r.largeBatch;return '<tr'+(c.withinBudget?'':' class="rej"')+'><td>'+(c.id===t.best?'★ ':'')+'<code>'+esc(c.id)+'</code></td><td class="w">'+esc(c.title)+'</td><td>'+fmtB(r.sizeBytes)+' ('+r.vsOriginal.sizeRatio.toFixed(2)+'x)</td><td>'+fmtB(r.gzipBytes)+'</td><td>'+r.loadMs.toFixed(1)+' ms</td><td>'+fmtMs(r.batch1.p50Ms)+' ('+r.vsOriginal.speedupP50.toFixed(2)+'x)</td><td>'+fmtMs(r.batch1.p95Ms)+'</td><td>'+(lb?fmtMs(lb.p50Ms)+' @'+lb.batchSize:'-')+'</td><td>'+fmtB(r.peakRssBytes)+'</td><td>'+r.agreement.cosine.toFixed(5)+'</td><td>'+(r.agreement.top1==null?'-':r.agreement.top1.toFixed(3))+'</td><td>'+r.costPerMillionUsd.toPrecision(3)+'</td><td>'+
  (!c.withinBudget?'<span class="w" title="'+esc(c.rejection)+'">rejected: '+esc(String(c.rejection||'').replace('outside the accuracy budget: ','')).replace(/, /g,'<br>')+'</span>':waiting?'<button onclick="approve(\\''+c.id+'\\')">Approve</button>':chosen===c.id?'chosen ('+esc(s.chosenPlan.source)+')':'')+'</td></tr>'}).join('')+'</table>'+
  na.map(c=>'<div class="na"><code>'+esc(c.id)+'</code> '+(c.state==='not-applicable'?'not applicable':'failed')+': '+esc(c.reason)+'</div>').join('')+
  '<p class="na">budget: cosine ≥ '+t.budget.minCosine+', top-1 ≥ '+t.budget.minTop1+' · ★ = best within the budget · '+esc(t.score)+'</p></div>';return h}
const REV_COLORS=['#2a6fdb','#e08214','#1a9850','#8e44ad','#d73027','#17becf','#7f7f7f','#bcbd22'];
function servingCard(g){if(!g)return '';const color=i=>REV_COLORS[i%REV_COLORS.length];
  let h='<div class="card" id="serving"><b>Serving</b> — '+esc(g.state)+', '+g.replicas.length+' replica(s) running, '+g.inFlight+' request(s) in flight'+(g.heldRequests?', '+g.heldRequests+' held':'')+
  '<div class="split" title="traffic split">'+g.revisions.filter(r=>r.percent>0).map(r=>'<div style="width:'+r.percent+'%;background:'+color(g.revisions.indexOf(r))+'">'+esc(r.name)+' '+r.percent+'%</div>').join('')+'</div>'+
  '<table><tr><th>revision</th><th>traffic</th><th>replicas ready / wanted</th><th>in flight</th><th>autoscaler</th></tr>'+
  g.revisions.map((r,i)=>'<tr><td><span style="color:'+color(i)+'">■</span> <code>'+esc(r.name)+'</code></td><td>'+r.percent+'%</td><td>'+r.readyReplicas+' / '+r.desiredReplicas+'</td><td>'+r.inFlight+'</td><td>'+
    (r.autoscaler?(r.autoscaler.panic?'<b>panic</b> · ':'')+'concurrency '+r.autoscaler.stableConcurrency.toFixed(2)+' (stable), '+r.autoscaler.panicConcurrency.toFixed(2)+' (panic)':'fixed')+'</td></tr>').join('')+'</table>'+
  (g.traffic.rules.length?'<p class="na">header rules: '+g.traffic.rules.map(u=>esc(u.header)+': '+esc(u.value)+' → '+esc(u.revision)).join('; ')+'</p>':'')+
  '<p class="na">'+(g.autoscaling?'autoscaling '+g.autoscaling.minReplicas+'–'+g.autoscaling.maxReplicas+' replicas, target '+g.autoscaling.targetInFlight+' in flight per replica':'fixed replica count')+
  ' · '+(g.scaleToZeroAfterMs==null?'no scale to zero':'scale to zero after '+Math.round(g.scaleToZeroAfterMs/1000)+' s idle')+' · '+g.coldStarts+' cold start(s)'+(g.lastWakeMs!=null?', last wake '+g.lastWakeMs+' ms':'')+'</p>'+
  (g.scaleEvents.length?'<p class="na">recent scaling: '+g.scaleEvents.slice(-5).reverse().map(e=>esc(e.revision)+' '+e.from+'→'+e.to+' ('+esc(e.reason)+', '+esc(new Date(e.at).toLocaleTimeString())+')').join('; ')+'</p>':'')+'</div>';
  return h}
function chart(title,points,series){
  const W=500,H=160,P=30;const xs=points.map(p=>Date.parse(p.collectedAt));
  const vals=series.flatMap(s=>points.map(p=>p[s.key]).filter(v=>v!=null));
  if(!points.length||!vals.length)return '<div class="card"><b>'+title+'</b><p>No samples yet.</p></div>';
  const x0=Math.min(...xs),x1=Math.max(...xs,x0+1),y1=Math.max(...vals,1e-9);
  const X=t=>P+(W-2*P)*(t-x0)/(x1-x0),Y=v=>H-P+(-(H-2*P)*v/y1);
  const lines=series.map(s=>{const pts=points.filter(p=>p[s.key]!=null).map(p=>X(Date.parse(p.collectedAt)).toFixed(1)+','+Y(p[s.key]).toFixed(1)).join(' ');
    return '<polyline fill="none" stroke="'+s.color+'" stroke-width="2" points="'+pts+'"/>'}).join('');
  const legend=series.map((s,i)=>'<text x="'+(P+i*90)+'" y="14" fill="'+s.color+'" font-size="11">'+s.label+'</text>').join('');
  return '<div class="card"><b>'+title+'</b><svg viewBox="0 0 '+W+' '+H+'">'+legend+
    '<text x="2" y="'+(P+4)+'" font-size="10">'+y1.toFixed(2)+'</text><text x="2" y="'+(H-P)+'" font-size="10">0</text>'+
    '<line x1="'+P+'" y1="'+(H-P)+'" x2="'+(W-P)+'" y2="'+(H-P)+'" stroke="#ccc"/>'+lines+'</svg></div>'}`;

function shell(title: string, config: FerryConfig, body: string, script: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><style>${style}</style></head>
<body><header><b>Ferry</b> · <a href="/">deployments</a> · <a href="${config.temporal.uiUrl}">Temporal UI</a></header>
<main>${body}</main><script>${helpers}${script}</script></body></html>`;
}

export function dashboardPage(config: FerryConfig): string {
  return shell(
    'Ferry deployments',
    config,
    `<h2>Deployments</h2><div id="list">Loading…</div>`,
    `async function load(){try{const rows=await getJson('/api/deployments');
document.getElementById('list').innerHTML=rows.length?'<table><tr><th>Deployment</th><th>Stage</th><th>Run</th><th>Started</th></tr>'+
rows.map(r=>'<tr><td><a href="/deployments/'+encodeURIComponent(r.deploymentId)+'">'+esc(r.deploymentId)+'</a></td><td>'+esc(r.stage)+'</td><td>'+esc(r.status)+'</td><td>'+esc(r.startTime)+'</td></tr>').join('')+'</table>'
:'<p>No deployments yet. Run <code>ferry deploy ./model.onnx</code>.</p>'}catch(e){document.getElementById('list').innerHTML='<p class="err">'+esc(e.message)+'</p>'}}
load();setInterval(load,3000);`,
  );
}

export function deploymentPage(config: FerryConfig, id: string): string {
  const idJson = JSON.stringify(id);
  return shell(
    `Ferry · ${id}`,
    config,
    `<h2 id="title"></h2><div id="view">Loading…</div>`,
    `const ID=${idJson};
async function approve(plan){try{await getJson('/api/deployments/'+encodeURIComponent(ID)+'/approve',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({plan,approvedBy:'dashboard'})});load()}catch(e){alert(e.message)}}
async function load(){try{const v=await getJson('/api/deployments/'+encodeURIComponent(ID));const s=v.status;
document.getElementById('title').textContent=s.deploymentId+' — '+s.phase;
let h='<div class="card"><div class="stages">'+s.stages.map(st=>'<div class="stage '+st.state+'"><b>'+st.stage+'</b><br><small>'+esc(st.detail||st.state)+'</small></div>').join('')+'</div></div>';
if(s.error)h+='<div class="card err">'+esc(s.error)+'</div>';
if(s.optimization){h+=optimizationCard(s)}else if(s.plans){h+='<div class="card"><b>Optimization plans</b>'+(s.phase==='awaiting-approval'?' — waiting for approval until '+esc(s.approvalDeadline):'')+'<table>'+
s.plans.map(p=>'<tr><td>'+(p.id===s.defaultPlan?'★ ':'')+'<code>'+esc(p.id)+'</code></td><td>'+esc(p.title)+'</td><td>'+esc(p.expectedEffect)+'</td><td>'+
(s.phase==='awaiting-approval'?'<button onclick="approve(\\''+p.id+'\\')">Approve</button>':(s.chosenPlan&&s.chosenPlan.plan===p.id?'chosen ('+esc(s.chosenPlan.source)+')':''))+'</td></tr>').join('')+'</table></div>'}
if(s.benchmark){const b=s.benchmark;h+='<div class="card"><b>Benchmark</b> ('+esc(b.plan)+' vs original, batch '+b.batchSize+')<table><tr><th></th><th>size</th><th>p50 ms</th><th>p95 ms</th></tr>'+
'<tr><td>original</td><td>'+b.original.sizeBytes+'</td><td>'+b.original.latency.p50Ms.toFixed(3)+'</td><td>'+b.original.latency.p95Ms.toFixed(3)+'</td></tr>'+
'<tr><td>'+esc(b.plan)+'</td><td>'+b.candidate.sizeBytes+'</td><td>'+b.candidate.latency.p50Ms.toFixed(3)+'</td><td>'+b.candidate.latency.p95Ms.toFixed(3)+'</td></tr></table>max |diff| '+b.maxAbsDiff.toExponential(2)+'</div>'}
h+='<div class="card">Endpoint: <code>'+esc(s.inferUrl||'-')+'</code><br>Serving: '+esc(v.serving?v.serving.servingState:'-')+
(v.serving?' · '+v.serving.hibernations+' hibernation(s)':'')+'<br><a href="'+esc(v.temporalUiUrl)+'">Temporal run</a></div>';
h+=servingCard(v.gateway);
h+='<div class="charts">'+chart('Requests per interval',v.metrics,[{key:'requestsDelta',label:'requests',color:'#2a6fdb'}])+
chart('Latency (ms)',v.metrics,[{key:'latencyP50Ms',label:'p50',color:'#1a9850'},{key:'latencyP95Ms',label:'p95',color:'#d73027'}])+
chart('Replicas (autoscaler and hibernation)',v.metrics,[{key:'replicas',label:'replicas',color:'#8e44ad'}])+'</div>';
document.getElementById('view').innerHTML=h}catch(e){document.getElementById('view').innerHTML='<p class="err">'+esc(e.message)+'</p>'}}
load();setInterval(load,2000);`,
  );
}
