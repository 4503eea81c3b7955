// Starts the packaged asciinema-player on the page's #player element, fed from the console's
// cast endpoint (same origin, the session cookie goes along). No inline script: the page's CSP
// allows scripts from /static only.
//
// A long recording comes in pieces: /cast answers with a few MB of cast from a moment
// (`from`), and names where the next piece starts (x-sessrec-next). When a piece has played
// to its end, the next one is fetched and played on from that moment, so playback starts at
// once whatever the size of the recording. Opened at a moment (data-start: a timeline jump
// mark or a search hit), the player shows the screen there, paused, at that time.
//
// A live channel (data-live) is followed instead: /follow sends its output as server-sent
// events as the recorder writes it, into the player's eventsource driver.
(function () {
  // The integrity verdict, asked for once the page is up (text only, never markup).
  var integrity = document.getElementById('integrity');
  if (integrity && integrity.dataset.src) {
    fetch(integrity.dataset.src, { credentials: 'same-origin' }).then(function (r) {
      return r.text();
    }).then(function (text) {
      integrity.textContent = text;
    }, function () {
      integrity.textContent = 'integrity: could not be checked';
    });
  }
  var el = document.getElementById('player');
  if (!el) { return; }
  var cols = +el.dataset.cols;
  var rows = +el.dataset.rows;

  if (el.dataset.live !== undefined) {
    window.sessrecPlayer = AsciinemaPlayer.create(
      { driver: 'eventsource', url: el.dataset.live, bufferTime: 0 }, el,
      { cols: cols, rows: rows, fit: 'width', autoPlay: true });
    return;
  }

  function piece(from, autoPlay, seekTo) {
    var url = el.dataset.cast + (from > 0 ? '&from=' + from.toFixed(6) : '');
    var next = null;
    var data = fetch(url, { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) { throw new Error('cast: HTTP ' + r.status); }
      var n = r.headers.get('x-sessrec-next');
      next = n === null ? null : +n;
      el.dataset.next = n === null ? '' : n;
      return r.text();
    });
    var options = { cols: cols, rows: rows, fit: 'width' };
    if (from > 0) { options.startAt = from; }
    if (autoPlay) { options.autoPlay = true; }
    if (window.sessrecPlayer) { window.sessrecPlayer.dispose(); }
    el.textContent = '';
    var player = AsciinemaPlayer.create({ data: function () { return data; } }, el, options);
    player.addEventListener('ended', function () {
      if (next !== null && next > from) { piece(next, true, null); }
    });
    if (seekTo !== null) { player.seek(seekTo); }
    window.sessrecPlayer = player;
  }

  if (el.dataset.start !== undefined) {
    piece(+el.dataset.start, false, +el.dataset.start);
  } else {
    piece(0, true, null);
  }
})();
