// Starts the packaged asciinema-player on the page's #player element, fed from the console's
// cast endpoint (same origin, the session cookie goes along). No inline script: the page's CSP
// allows scripts from /static only. Opened from a timeline jump mark (data-start), the player
// shows the screen at that moment and plays on from there when started.
(function () {
  var el = document.getElementById('player');
  if (!el) { return; }
  var options = { cols: +el.dataset.cols, rows: +el.dataset.rows, fit: 'width' };
  if (el.dataset.start !== undefined) {
    options.startAt = +el.dataset.start;
    options.poster = 'npt:' + el.dataset.start;
  } else {
    options.autoPlay = true;
  }
  window.sessrecPlayer = AsciinemaPlayer.create(el.dataset.cast, el, options);
})();
