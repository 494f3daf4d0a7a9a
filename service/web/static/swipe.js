// A swipe between two map panes: a range input over the map; the left pane shows left of the divider, the right
// pane right of it. (leaflet-side-by-side clips one layer's getContainer(), which vector layers do not have, and
// ships as CommonJS needing a bundler; this is the same idea on panes, with no build step.)

/**
 * Clip `leftPane` and `rightPane` (panes of `map`) at a divider the reader drags; returns the range input.
 * The clip is in layer points, so it follows the map as it pans and zooms.
 */
export function swipe(L, map, leftPane, rightPane) {
  const box = L.DomUtil.create('div', 'bn-swipe', map.getContainer());
  const divider = L.DomUtil.create('div', 'bn-swipe-divider', box);
  const range = L.DomUtil.create('input', 'bn-swipe-range', box);
  range.type = 'range';
  range.min = '0';
  range.max = '1';
  range.step = 'any';
  range.value = '0.5';
  range.id = 'swipe';
  range.setAttribute('aria-label', 'Swipe between the left and the right map');
  L.DomEvent.disableClickPropagation(box);
  L.DomEvent.disableScrollPropagation(box);

  function update() {
    const size = map.getSize();
    const x = size.x * Number(range.value);
    const nw = map.containerPointToLayerPoint([0, 0]);
    const se = map.containerPointToLayerPoint(size);
    const cut = nw.x + x;
    leftPane.style.clip = `rect(${nw.y}px, ${cut}px, ${se.y}px, ${nw.x}px)`;
    rightPane.style.clip = `rect(${nw.y}px, ${se.x}px, ${se.y}px, ${cut}px)`;
    divider.style.left = `${x}px`;
  }
  // dragging the thumb must not drag the map
  const hold = () => map.dragging.disable();
  const release = () => map.dragging.enable();
  range.addEventListener('pointerdown', hold);
  range.addEventListener('pointerup', release);
  range.addEventListener('pointercancel', release);
  range.addEventListener('input', update);
  map.on('move zoom resize viewreset zoomend moveend', update);
  update();
  return range;
}
