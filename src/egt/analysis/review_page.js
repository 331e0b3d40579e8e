// The review page's script (egt.analysis.review): marks in localStorage, export, sort, filter, paging, keys.
(function(){
const KEY = 'egt-review:' + document.body.dataset.key, SIZE = +document.body.dataset.pageSize;
let state = {}; try { state = JSON.parse(localStorage.getItem(KEY) || '{}'); } catch (e) { state = {}; }
const items = Array.from(document.querySelectorAll('#suspects .item'));
const all = Array.from(document.querySelectorAll('.item'));
const $ = id => document.getElementById(id);
let page = 0, shown = [], cur = -1;
function save(){ localStorage.setItem(KEY, JSON.stringify(state)); paint(); }
function paint(){
  for (const el of all) {
    const s = state[el.dataset.id]; el.dataset.action = s ? s.action : '';
    for (const b of el.querySelectorAll('.act button')) b.classList.toggle('on', !!s && b.dataset.a === s.action);
    const note = el.querySelector('.act input'); if (document.activeElement !== note) note.value = s ? (s.note || '') : '';
  }
  const n = Object.keys(state).length; $('count').textContent = n + ' reviewed';
}
function mark(el, action){
  const id = el.dataset.id, note = el.querySelector('.act input').value;
  if (action === 'clear') delete state[id];
  else state[id] = {action: action, note: note, time: new Date().toISOString(), label: +el.dataset.label};
  save();
}
function render(){
  const by = $('sort').value, cat = $('cat').value, agree = $('agree').value, ff = $('ff').value,
        status = $('status').value, q = $('search').value.trim().toLowerCase();
  shown = items.filter(el => (!cat || el.dataset.category === cat) && (!agree || el.dataset.agree === agree)
      && (!ff || (ff === 'with') === (+el.dataset.ff > 0))
      && (!status || (status === 'todo') === !state[el.dataset.id])
      && (!q || el.dataset.id.toLowerCase().includes(q)));
  shown.sort((a, b) => (+b.dataset['s' + by] - +a.dataset['s' + by]) || (a.dataset.id < b.dataset.id ? -1 : 1));
  const pages = Math.max(1, Math.ceil(shown.length / SIZE)); page = Math.min(page, pages - 1);
  const list = $('suspects'); for (const el of items) el.style.display = 'none';
  shown.forEach((el, i) => { list.appendChild(el); el.querySelector('.rank').textContent = '#' + (i + 1);
    el.style.display = (i >= page * SIZE && i < (page + 1) * SIZE) ? '' : 'none'; });
  $('pageinfo').textContent = 'page ' + (page + 1) + ' of ' + pages + ' (' + shown.length + ' items)';
  select(Math.min(Math.max(cur, page * SIZE), Math.min(shown.length, (page + 1) * SIZE) - 1), false);
}
function select(i, scroll){
  for (const el of all) el.classList.remove('cur');
  cur = i; if (i < 0 || i >= shown.length) return;
  if (i < page * SIZE || i >= (page + 1) * SIZE) { page = Math.floor(i / SIZE); render(); }
  shown[i].classList.add('cur'); if (scroll !== false) shown[i].scrollIntoView({block: 'center'});
}
function exportJsonl(){
  const order = all.map(el => el.dataset.id).filter(id => state[id]);
  const text = order.map(id => JSON.stringify(Object.assign({id: id}, state[id]))).join('\n') + (order.length ? '\n' : '');
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], {type: 'application/jsonl'}));
  a.download = 'corrections.jsonl'; document.body.appendChild(a); a.click(); a.remove();
  $('exported').textContent = 'exported ' + order.length + ' line(s)';
}
for (const el of all) {
  for (const b of el.querySelectorAll('.act button')) b.addEventListener('click', () => mark(el, b.dataset.a));
  el.querySelector('.act input').addEventListener('change', e => { if (state[el.dataset.id]) { state[el.dataset.id].note = e.target.value; save(); } });
  el.addEventListener('click', () => { const i = shown.indexOf(el); if (i >= 0) select(i, false); });
}
for (const img of document.querySelectorAll('.imgs img')) img.addEventListener('click', e => {
  e.stopPropagation(); $('lightbox').querySelector('img').src = img.src; $('lightbox').style.display = 'flex'; });
$('lightbox').addEventListener('click', () => { $('lightbox').style.display = 'none'; });
for (const id of ['sort', 'cat', 'agree', 'ff', 'status']) $(id).addEventListener('change', () => { page = 0; render(); });
$('search').addEventListener('input', () => { page = 0; render(); });
$('prev').addEventListener('click', () => { page = Math.max(0, page - 1); cur = page * SIZE; render(); });
$('next').addEventListener('click', () => { page = page + 1; cur = page * SIZE; render(); });
$('export').addEventListener('click', exportJsonl);
document.addEventListener('keydown', e => {
  if (e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT' || e.target.tagName === 'TEXTAREA') {
    if (e.key === 'Escape') e.target.blur(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const el = shown[cur], acts = {k: 'keep', f: 'flip', d: 'drop', u: 'unsure', x: 'clear'};
  if (e.key === 'Escape') { $('lightbox').style.display = 'none'; return; }
  if (e.key === 'j' || e.key === 'ArrowDown') { select(Math.min(cur + 1, shown.length - 1)); e.preventDefault(); }
  else if (e.key === 'p' || e.key === 'ArrowUp') { select(Math.max(cur - 1, 0)); e.preventDefault(); }
  else if (e.key === '/') { $('search').focus(); e.preventDefault(); }
  else if (e.key === 'c' && el) { el.querySelector('.act input').focus(); e.preventDefault(); }
  else if (acts[e.key] && el) { mark(el, acts[e.key]); if (acts[e.key] !== 'clear') select(Math.min(cur + 1, shown.length - 1)); }
});
paint(); cur = 0; render();
})();
