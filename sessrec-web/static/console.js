// Starts the packaged asciinema-player on the page's #player element, fed from the console's
// cast endpoint (same origin, the session cookie goes along). No inline script: the page's CSP
// allows scripts from /static only.
//
// A long recording comes in pieces: /cast answers with a few MB of cast from a moment
// (`from`), and names where the next piece starts (x-sessrec-next) and where the channel
// ends (x-sessrec-duration). When a piece has played to its end, the next one is fetched and
// played on from that moment, so playback starts at once whatever the size of the recording;
// the progress bar spans the whole channel, and seeking anywhere fetches the piece there. Opened at a moment (data-start: a timeline jump
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
      integrity.className = text.indexOf('integrity: verified') === 0 ? 'verified' : 'problem';
    }, function () {
      integrity.textContent = 'integrity: could not be checked';
      integrity.className = 'problem';
    });
  }

  // A session's timeline, a part at a time (JSON). Recorded text goes in as textContent only;
  // each entry of a channel with I/O gets its jump mark into the player. When every part is in,
  // the list is marked complete (data-state). A part of a build the console no longer keeps
  // (409) starts the timeline again from part 0, a few times at most.
  var timeline = document.getElementById('timeline');
  if (timeline && timeline.dataset.src) {
    var status = document.getElementById('timeline-status');
    var restarts = 0;
    var show = function (text) { if (status) { status.textContent = text; } };
    var add = function (e) {
      var li = document.createElement('li');
      var time = document.createElement('time');
      time.textContent = e.when;
      if (e.href !== null && e.href.indexOf('/play?') === 0) {
        var a = document.createElement('a');
        a.className = 'jump';
        a.href = e.href;
        a.appendChild(time);
        li.appendChild(a);
      } else {
        li.appendChild(time);
      }
      li.appendChild(document.createTextNode(' '));
      var b = document.createElement('b');
      b.textContent = e.file;
      li.appendChild(b);
      li.appendChild(document.createTextNode(' ' + e.kind + ' '));
      var span = document.createElement('span');
      span.className = 'text';
      span.textContent = e.text;
      li.appendChild(span);
      return li;
    };
    var part = function (n, version) {
      var url = timeline.dataset.src + '&part=' + n + (n > 0 ? '&v=' + version : '');
      fetch(url, { credentials: 'same-origin' }).then(function (r) {
        if (r.status === 409 && restarts < 3) {
          restarts += 1;
          return null;
        }
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        return r.json();
      }).then(function (p) {
        if (p === null) {
          timeline.textContent = '';
          part(0, 0);
          return;
        }
        var items = document.createDocumentFragment();
        p.entries.forEach(function (e) { items.appendChild(add(e)); });
        timeline.appendChild(items);
        timeline.dataset.parts = p.part + 1;
        if (p.part + 1 < p.parts) {
          show('timeline: ' + timeline.children.length + ' of ' + p.total + ' entries, more coming…');
          part(p.part + 1, p.version);
        } else {
          show('timeline: ' + p.total + ' entries');
          timeline.dataset.state = 'complete';
        }
      }, function (err) {
        show('the timeline could not be loaded (' + err.message + ')');
        timeline.dataset.state = 'failed';
      });
    };
    part(0, 0);
  }
  // The session list refreshes itself: the same URL (filters and page) is asked for again
  // every data-refresh seconds while the tab is visible, and its count, rows and page links
  // replace the shown ones. The answer is the console's own escaped page, parsed into an inert
  // document; the filter form (and whatever is being typed into it) stays untouched. A login
  // that ended stops the refreshing.
  var list = document.getElementById('sessions');
  if (list && list.dataset.refresh) {
    var every = Math.max(2, +list.dataset.refresh) * 1000;
    var refreshStatus = document.getElementById('refresh-status');
    var refreshes = 0;

    var refresh = function () {
      if (document.hidden) { setTimeout(refresh, every); return; }
      fetch(location.href, { credentials: 'same-origin', headers: { 'X-Sessrec-Refresh': '1' } })
        .then(function (r) {
          if (r.status === 401 || r.redirected) { throw new Error('logged out'); }
          if (!r.ok) { return null; }
          return r.text();
        }).then(function (html) {
          if (html !== null) {
            var fresh = new DOMParser().parseFromString(html, 'text/html');
            ['count', 'sessions'].forEach(function (id) {
              var now = document.getElementById(id);
              var next = fresh.getElementById(id);
              if (now && next) {
                var body = now.tagName === 'TABLE' ? now.tBodies[0] : now;
                var nextBody = now.tagName === 'TABLE' ? next.tBodies[0] : next;
                body.replaceWith(document.importNode(nextBody, true));
              }
            });
            var pagesNow = document.querySelector('p.pages');
            var pagesNext = fresh.querySelector('p.pages');
            if (pagesNow && pagesNext) { pagesNow.replaceWith(document.importNode(pagesNext, true)); }
            refreshes += 1;
            list.dataset.refreshes = refreshes;
            if (refreshStatus) {
              refreshStatus.textContent = 'updated ' + new Date().toLocaleTimeString();
            }
          }
          setTimeout(refresh, every);
        }, function () {
          if (refreshStatus) { refreshStatus.textContent = 'not refreshed: log in again'; }
        });
    };
    setTimeout(refresh, every);
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

  // One piece in the player. When the console names the whole channel's length
  // (x-sessrec-duration), an empty output event at that moment ends the piece's cast, so the
  // progress bar spans the whole recording; the player's time is then watched, and once it
  // leaves the piece (played past its end, or sought before or after it) the piece for that
  // moment is fetched and played on (or shown paused) from there.
  var watch = null;
  function piece(from, autoPlay, seekTo) {
    if (watch !== null) { clearInterval(watch); watch = null; }
    var url = el.dataset.cast + (from > 0 ? '&from=' + from.toFixed(6) : '');
    var next = null;
    var first = from;
    var loaded = false;
    var playing = !!autoPlay;
    var data = fetch(url, { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) { throw new Error('cast: HTTP ' + r.status); }
      var n = r.headers.get('x-sessrec-next');
      var d = r.headers.get('x-sessrec-duration');
      next = n === null ? null : +n;
      el.dataset.next = n === null ? '' : n;
      el.dataset.duration = d === null ? '' : d;
      return r.text().then(function (text) {
        try {
          first = Math.min(from, JSON.parse(text.split('\n', 2)[1])[0]);
        } catch (e) { /* a piece without events */ }
        if (next !== null && d !== null && +d > next) {
          text = text.replace(/\n*$/, '\n') + JSON.stringify([+d, 'o', '']) + '\n';
        }
        loaded = true;
        return text;
      });
    });
    var options = { cols: cols, rows: rows, fit: 'width' };
    if (from > 0) { options.startAt = from; }
    if (autoPlay) { options.autoPlay = true; }
    if (window.sessrecPlayer) { window.sessrecPlayer.dispose(); }
    el.textContent = '';
    el.dataset.from = from;
    var player = AsciinemaPlayer.create({ data: function () { return data; } }, el, options);
    player.addEventListener('play', function () { playing = true; });
    player.addEventListener('playing', function () { playing = true; });
    player.addEventListener('pause', function () { playing = false; });
    player.addEventListener('ended', function () {
      playing = false;
      if (next !== null && next > from) { piece(next, true, null); }
    });
    if (seekTo !== null) { player.seek(seekTo); }
    window.sessrecPlayer = player;
    watch = setInterval(function () {
      if (!loaded || next === null && from === 0) { return; }
      Promise.resolve(player.getCurrentTime()).then(function (t) {
        if (window.sessrecPlayer !== player || typeof t !== 'number') { return; }
        if (next !== null && next > from && t >= next) {
          // Played on into the next piece, or sought past this one.
          if (playing && t - next < 1) { piece(next, true, null); } else { piece(t, playing, t); }
        } else if (from > 0 && t < first - 0.001) {
          piece(t, playing, t);
        }
      });
    }, 250);
  }

  if (el.dataset.start !== undefined) {
    piece(+el.dataset.start, false, +el.dataset.start);
  } else {
    piece(0, true, null);
  }
})();
