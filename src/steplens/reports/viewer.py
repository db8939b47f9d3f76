"""The chain-of-steps viewer: a slider over denoising steps in a self-contained HTML report.

For a traced sample, three sprite images (one row per step, the frames of x0_hat side by side):
- `steps.png`: x0_hat at every step;
- `highlight.png`: the same, dimmed, with the pixels that changed since the previous step in magenta and those
  that still differ from the final answer in cyan (candidates that appear, and those that get pruned).
The page shows one row at a readable size (nearest-neighbour scaling), the step index, sigma, the expert (two-
expert models) and the scorer's verdict on that step's x0_hat, and the per-step curves with a marker at the
current step. A small hand-written script (no library, no network) drives every viewer of the page; arrow keys
move the viewer last touched. `image_stepper` is the same slider over a list of images (the energy probe's
layer x frame grids at its recorded steps).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ..io.files import write_png
from ..regions import CHANGE_THRESHOLD, change

GAP = 1  # native pixels of grey between frames in a sprite row
MAGENTA, CYAN = np.array([255, 0, 255], np.uint8), np.array([0, 200, 255], np.uint8)
VIEW_PX = 150  # about this many screen pixels for a frame's height


def _rows(videos: np.ndarray) -> np.ndarray:
    """(S, T, H, W, 3) uint8 -> (S*H, T*W + (T-1)*GAP, 3): one row per step."""
    s, t, h, w, _ = videos.shape
    out = np.full((s, h, t * w + (t - 1) * GAP, 3), 128, np.uint8)
    for f in range(t):
        out[:, :, f * (w + GAP): f * (w + GAP) + w] = videos[:, f]
    return out.reshape(s * h, -1, 3)


def highlight(videos: np.ndarray, first: np.ndarray) -> np.ndarray:
    """(S, T, H, W, 3) uint8: each step dimmed, magenta where it changed since the previous step (step 0: since
    the first frame), cyan where it still differs from the last step's x0_hat (the final answer). One step at a
    time: a float copy of one step is held, not of all."""
    out = np.empty_like(videos)
    last = videos[-1:].astype(np.float32)
    for k in range(len(videos)):
        v = videos[k:k + 1].astype(np.float32)
        prev = (np.broadcast_to(first, v.shape) if k == 0 else videos[k - 1:k]).astype(np.float32)
        grey = v.mean(-1, keepdims=True)
        row = (0.35 * grey + 0.65 * 235).repeat(3, -1)
        differs = change(v, last) > CHANGE_THRESHOLD
        changed = change(v, prev) > CHANGE_THRESHOLD
        row[differs] = CYAN
        row[changed] = MAGENTA
        out[k] = np.clip(row[0], 0, 255).astype(np.uint8)
    return out


def write_sprites(videos: np.ndarray, first_frame: np.ndarray, out: Path) -> dict:
    """Write steps.png and highlight.png for x0_hat's videos (S, T, H, W, 3) uint8; return their geometry."""
    videos = np.asarray(videos, np.uint8)
    s, t, h, w, _ = videos.shape
    write_png(Path(out) / "steps.png", _rows(videos))
    write_png(Path(out) / "highlight.png", _rows(highlight(videos, first_frame)))
    return {"steps": s, "frames": t, "h": h, "w": w, "row_w": t * w + (t - 1) * GAP,
            "scale": max(2, VIEW_PX // max(h, 1))}


def trace_viewer(rel: str, geometry: dict, sigmas: list[float], metrics: list[dict], experts: list | None,
                 title: str, candidates: list | None = None) -> str:
    """The HTML of one viewer; `rel` is the trace folder relative to the report. With the task's listed answers
    (`candidates`: {label, right}) the curves also show how strongly x0_hat draws each, per step."""
    data = {"src": f"{rel}/steps.png", "hl": f"{rel}/highlight.png", **geometry, "sigmas": sigmas,
            "experts": experts or [None] * len(sigmas),
            "at": [m.get("step", i) for i, m in enumerate(metrics)],  # the step of each row (decoded steps alone)
            "score": [m["score"] for m in metrics], "success": [m["success"] for m in metrics],
            "on": [m["on_target"] for m in metrics], "off": [m["off_target"] for m in metrics], "cands": []}
    if candidates and "candidate_strengths" in metrics[0]:
        data["cands"] = [{"label": c["label"], "right": bool(c["right"]),
                          "v": [round(m["candidate_strengths"][i], 4) for m in metrics]} for i, c in enumerate(candidates)]
    return (f'<div class="slv" tabindex="0" aria-label="{html.escape(title)}">'
            f'<script type="application/json">{html.escape(json.dumps(data), quote=False)}</script>'
            f'<img class="slv-sprite" src="{html.escape(data["src"])}" alt="" hidden>'
            f'<img class="slv-sprite" src="{html.escape(data["hl"])}" alt="" hidden></div>')


def paired_viewer(left: str, right: str, align: list[int], title: str) -> str:
    """Two viewers side by side (`trace_viewer` HTML), the right one following the left: at the left's step k it
    shows step align[k] (a student's steps beside its teacher's at the nearest σ: steplens.orchestrators.chains)."""
    return (f'<div class="slp" aria-label="{html.escape(title)}" data-align="{html.escape(json.dumps(align))}">'
            f'<div class="slp-side">{left}</div><div class="slp-side">{right}</div></div>')


def image_stepper(srcs: list[str], labels: list[str], title: str, width: int = 420) -> str:
    """A slider over a list of images (same size): the energy probe's grids, one per recorded step."""
    data = {"srcs": srcs, "labels": labels, "width": width}
    imgs = "".join(f'<img class="slv-sprite" src="{html.escape(s)}" alt="" hidden>' for s in srcs)
    return (f'<div class="sls" tabindex="0" aria-label="{html.escape(title)}">'
            f'<script type="application/json">{html.escape(json.dumps(data), quote=False)}</script>{imgs}</div>')


CSS = """
.slv,.sls{border:1px solid #ddd;border-radius:6px;padding:.6em .8em;margin:.6em 0;display:inline-block;outline:none}
.slv:focus,.sls:focus{border-color:#68a}
.slv-frame{image-rendering:pixelated;background-repeat:no-repeat;border:1px solid #bbb;margin:.3em 0}
.slv-bar{display:flex;gap:1em;align-items:center;font-size:.9em;flex-wrap:wrap}
.slv-bar input[type=range]{width:260px}.slv-label{font-family:ui-monospace,monospace;min-width:22em}
.slv-ok{color:#080;font-weight:600}.slv-bad{color:#b00;font-weight:600}
.slv-legend{font-size:.8em;color:#555}.slv-legend b.m{color:#c0c}.slv-legend b.c{color:#08b}
.slv svg{display:block;margin-top:.3em}
.slp{display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}
"""

JS = r"""
(function(){
  var last=null;
  function data(el){return JSON.parse(el.querySelector('script[type="application/json"]').textContent);}
  function bar(el,n,onchange){
    var b=document.createElement('div');b.className='slv-bar';
    var r=document.createElement('input');r.type='range';r.min=0;r.max=n-1;r.value=0;r.className='slv-step';
    var l=document.createElement('span');l.className='slv-label';
    b.appendChild(r);b.appendChild(l);el.appendChild(b);
    function set(k){k=Math.max(0,Math.min(n-1,k));r.value=k;onchange(k,l);if(el.slFollow)el.slFollow(k);}
    r.addEventListener('input',function(){last=el;set(+r.value);});
    el.addEventListener('focus',function(){last=el;});el.addEventListener('click',function(){last=el;});
    el.slSet=function(d){set(+r.value+d);};el.slGo=function(k){set(k);};
    return {bar:b,set:set};
  }
  function fmt(x){return (Math.round(x*1000)/1000).toFixed(3);}
  function curves(d,w,h){
    var ns='http://www.w3.org/2000/svg',svg=document.createElementNS(ns,'svg'),n=d.score.length;
    svg.setAttribute('width',w);svg.setAttribute('height',h);svg.setAttribute('class','slv-curves');
    var pad=28,mx=Math.max(1,Math.max.apply(null,d.on.concat(d.off)));
    function X(i){return pad+(n>1?i*(w-2*pad)/(n-1):0);}
    function line(vals,scale,col,dash,name){
      var p=document.createElementNS(ns,'polyline'),pts=[];
      for(var i=0;i<n;i++)pts.push(X(i)+','+(h-16-(h-26)*vals[i]/scale));
      p.setAttribute('points',pts.join(' '));p.setAttribute('fill','none');p.setAttribute('stroke',col);
      p.setAttribute('stroke-width',1.6);if(dash)p.setAttribute('stroke-dasharray',dash);
      var t=document.createElementNS(ns,'title');t.textContent=name;p.appendChild(t);svg.appendChild(p);
    }
    function text(x,y,s,anchor,col){var t=document.createElementNS(ns,'text');t.setAttribute('x',x);t.setAttribute('y',y);
      t.setAttribute('font-size',10);t.setAttribute('text-anchor',anchor||'start');t.setAttribute('fill',col||'#444');
      t.textContent=s;svg.appendChild(t);}
    var ax=document.createElementNS(ns,'rect');ax.setAttribute('x',pad);ax.setAttribute('y',10);
    ax.setAttribute('width',w-2*pad);ax.setAttribute('height',h-26);ax.setAttribute('fill','#fafafa');
    ax.setAttribute('stroke','#ccc');svg.appendChild(ax);
    line(d.score,1,'#1f77b4','', 'score of x0_hat (0-1)');line(d.on,mx,'#2ca02c','4 2','on-target changed pixels');
    line(d.off,mx,'#d62728','2 2','off-target changed pixels');
    var pal=['#9467bd','#8c564b','#e377c2','#17becf','#bcbd22','#7f7f7f','#ff7f0e','#393b79'];
    (d.cands||[]).forEach(function(c,i){line(c.v,1,pal[i%pal.length],c.right?'':'6 3',
      'drawn in x0_hat (0-1): '+c.label+(c.right?' (right)':' (wrong)'));});
    text(pad-3,14,'1','end');text(pad-3,h-16,'0','end');text(w-pad+3,14,String(mx));text(w-pad+3,h-16,'0');
    var at=d.at||[];text(pad,h-3,'step '+(at.length?at[0]:0));text(w-pad,h-3,'step '+(at.length?at[n-1]:n-1),'end');
    text(w/2,h-3,'score (blue, 0-1) · changed pixels on / off target (green / red)'+
      ((d.cands||[]).length?' · listed answers (0-1; dashed: wrong)':''),'middle','#666');
    var m=document.createElementNS(ns,'line');m.setAttribute('y1',10);m.setAttribute('y2',h-16);
    m.setAttribute('stroke','#000');m.setAttribute('stroke-width',1.5);m.setAttribute('class','slv-marker');svg.appendChild(m);
    svg.mark=function(k){m.setAttribute('x1',X(k));m.setAttribute('x2',X(k));};
    return svg;
  }
  function held(d,k){  // the listed answers x0_hat draws at step k (>= 0.25), strongest first
    var c=(d.cands||[]).filter(function(x){return x.v[k]>=0.25;}).sort(function(a,b){return b.v[k]-a.v[k];});
    if(!(d.cands||[]).length)return '';
    return ' · holds '+(c.length?c.map(function(x){return x.label+(x.right?'':' (wrong)')+' '+fmt(x.v[k]);}).join(', '):'none');
  }
  function viewer(el){
    var d=data(el),hl=false,s=d.scale;
    var f=document.createElement('div');f.className='slv-frame';
    f.style.width=(d.row_w*s)+'px';f.style.height=(d.h*s)+'px';
    f.style.backgroundSize=(d.row_w*s)+'px '+(d.steps*d.h*s)+'px';
    var opts=document.createElement('label');opts.className='slv-legend';
    var cb=document.createElement('input');cb.type='checkbox';cb.className='slv-highlight';
    opts.appendChild(cb);opts.insertAdjacentHTML('beforeend',' highlight: <b class="m">magenta</b> changed since the '+
      'previous step, <b class="c">cyan</b> still differs from the final answer');
    var svg=curves(d,Math.max(320,d.row_w*s),120);
    var ui=bar(el,d.steps,function(k,l){
      f.style.backgroundImage='url("'+(hl?d.hl:d.src)+'")';
      f.style.backgroundPosition='0px '+(-k*d.h*s)+'px';
      f.dataset.step=k;f.dataset.view=hl?'highlight':'x0';
      var ex=d.experts[k]?' · expert '+d.experts[k]:'';
      l.innerHTML='step '+(d.at?d.at[k]:k)+' / '+(d.at?d.at[d.steps-1]:d.steps-1)+' · σ = '+fmt(d.sigmas[k])+ex+' · score '+fmt(d.score[k])+' · '+
        (d.success[k]?'<span class="slv-ok">solved</span>':'<span class="slv-bad">not solved</span>')+held(d,k);
      svg.mark(k);
    });
    el.appendChild(f);el.appendChild(opts);el.appendChild(svg);
    cb.addEventListener('change',function(){hl=cb.checked;last=el;ui.set(+el.querySelector('.slv-step').value);});
    ui.set(0);
  }
  function stepper(el){
    var d=data(el),img=document.createElement('img');img.className='sls-image';img.width=d.width;img.alt='';
    var ui=bar(el,d.srcs.length,function(k,l){img.src=d.srcs[k];l.textContent=d.labels[k];});
    el.appendChild(img);ui.set(0);
  }
  document.querySelectorAll('.slv').forEach(viewer);
  document.querySelectorAll('.sls').forEach(stepper);
  document.querySelectorAll('.slp').forEach(function(p){  // the right viewer follows the left at the nearest sigma
    var v=p.querySelectorAll('.slv'),al=JSON.parse(p.dataset.align);
    if(v.length===2){v[0].slFollow=function(k){v[1].slGo(al[k]);};v[0].slGo(0);}
  });
  document.addEventListener('keydown',function(e){
    if(!last||(e.key!=='ArrowLeft'&&e.key!=='ArrowRight'))return;
    if(e.target&&e.target.type==='range'&&e.target.closest('.slv,.sls')===last)return;  // the slider moves itself
    last.slSet(e.key==='ArrowRight'?1:-1);e.preventDefault();
  });
})();
"""
