// Starts the packaged asciinema-player on the page's #player element, fed from the console's
// cast endpoint (same origin, the session cookie goes along). No inline script: the page's CSP
// allows scripts from /static only.
(function () {
  var el = document.getElementById('player');
  if (!el) { return; }
  window.sessrecPlayer = AsciinemaPlayer.create(el.dataset.cast, el, {
    cols: +el.dataset.cols,
    rows: +el.dataset.rows,
    fit: 'width',
    autoPlay: true,
    idleTimeLimit: 2
  });
})();
