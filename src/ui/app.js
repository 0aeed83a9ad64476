/*  dungbeetle dashboard: polls the node's JSON API (docs/api.md) and shows
    queues, job lists, jobs and groups. No framework, no external requests:
    every element is built with the DOM and every value set as text. The
    bearer token, when the node wants one, is asked for once and kept in
    sessionStorage (this tab only).  */
'use strict';

(function () {
    var POLL_MS = 2000;
    var TOKEN_KEY = 'dungbeetle.token';
    var STATES = ['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE'];
    var api = new URL('..', location.href);     //  the API is the page's parent
    var timer = null;
    var generation = 0;                         //  bumps on every navigation

    //  -- helpers -----------------------------------------------------------

    function el(tag, attrs, children) {
        var node = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function (key) {
            if (key === 'text')
                node.textContent = attrs[key];
            else if (key === 'className')
                node.className = attrs[key];
            else if (key === 'onclick')
                node.addEventListener('click', attrs[key]);
            else
                node.setAttribute(key, attrs[key]);
        });
        (children || []).forEach(function (child) {
            if (child !== null && child !== undefined)
                node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
        });
        return node;
    }

    function link(href, text) {
        return el('a', { href: href, text: String(text) });
    }

    function num(value, field) {
        var attrs = { className: 'num', text: String(value) };
        if (field)
            attrs['data-field'] = field;
        return el('td', attrs);
    }

    function table(headers, rows, attrs) {
        var head = el('tr', {}, headers.map(function (h) { return el('th', { text: h }); }));
        return el('table', attrs || {}, [el('thead', {}, [head]), el('tbody', {}, rows)]);
    }

    function stateSpan(state) {
        return el('span', { className: 'state state-' + state, text: state });
    }

    function zeroTime(text) {
        return !text || text.indexOf('0001-01-01') === 0;
    }

    function status(text) {
        document.getElementById('status').textContent = text;
    }

    function setMain(children) {
        var main = document.getElementById('main');
        main.textContent = '';
        children.forEach(function (child) { if (child) main.appendChild(child); });
    }

    //  -- the API -----------------------------------------------------------

    function NeedToken() {}

    function request(method, path) {
        var headers = {};
        var token = sessionStorage.getItem(TOKEN_KEY);
        if (token)
            headers.Authorization = 'Bearer ' + token;
        return fetch(new URL(path.replace(/^\//, ''), api), { method: method, headers: headers,
                                                             cache: 'no-store' })
            .then(function (response) {
                if (response.status === 401)
                    throw new NeedToken();
                return response.json().then(function (doc) {
                    if (doc.status !== 'success') {
                        var error = new Error(doc.message || ('HTTP ' + response.status));
                        error.status = response.status;
                        throw error;
                    }
                    return doc.data;
                });
            });
    }

    function get(path) {
        return request('GET', path);
    }

    function askToken(message) {
        var form = document.getElementById('token-form');
        form.hidden = false;
        document.getElementById('token-error').textContent = message || '';
        document.getElementById('token-input').focus();
        setMain([]);
        status('token needed');
    }

    document.getElementById('token-form').addEventListener('submit', function (event) {
        event.preventDefault();
        var value = document.getElementById('token-input').value;
        if (!value)
            return;
        sessionStorage.setItem(TOKEN_KEY, value);
        document.getElementById('token-input').value = '';
        document.getElementById('token-form').hidden = true;
        route();
    });

    document.getElementById('search').addEventListener('submit', function (event) {
        event.preventDefault();
        var id = document.getElementById('search-id').value.trim();
        if (id)
            location.hash = '#/job/' + encodeURIComponent(id);
    });

    //  -- views -------------------------------------------------------------

    function workersCell(workers) {
        if (!workers.length)
            return el('td', { className: 'muted', 'data-field': 'workers', text: 'none' });
        return el('td', { 'data-field': 'workers' }, workers.map(function (w) {
            return el('div', { text: w.node + ': ' + w.free + ' free of ' + w.slots +
                               ' (' + w.workers + (w.workers === 1 ? ' worker)' : ' workers)') });
        }));
    }

    function overview() {
        return get('/queues').then(function (data) {
            document.getElementById('node').textContent = 'node ' + data.node;
            var queues = data.queues.map(function (q) {
                var base = '#/queue/' + encodeURIComponent(q.name) + '?state=';
                function count(value, state, field) {
                    return el('td', { className: 'num', 'data-field': field },
                              [link(base + state + (q.dispatcher ? '&dispatcher=' +
                                    encodeURIComponent(q.dispatcher) : ''), value)]);
                }
                return el('tr', { 'data-queue': q.name, 'data-dispatcher': q.dispatcher }, [
                    el('td', {}, [link(base + 'PENDING', q.name)]),
                    el('td', { text: q.dispatcher }),
                    num(q.depth, 'depth'),
                    count(q.running, 'STARTED', 'running'),
                    count(q.retrying, 'RETRY', 'retrying'),
                    count(q.succeeded, 'SUCCESS', 'succeeded'),
                    count(q.failed, 'FAILURE', 'failed'),
                    num(q.failed_last_hour, 'failed_last_hour'),
                    workersCell(q.workers),
                    num(q.replica_lag_ms < 0 ? '?' : q.replica_lag_ms, 'replica_lag_ms')
                ]);
            });
            var peers = data.peers.map(function (p) {
                return el('tr', { 'data-peer': p.node || p.endpoint }, [
                    el('td', { text: p.node || '?' }),
                    el('td', { text: p.endpoint }),
                    el('td', { text: p.up ? 'up' : 'down' }),
                    num(p.replica_lag_ms < 0 ? 'never synchronised' : p.replica_lag_ms + ' ms'),
                    num(p.replica_seq)
                ]);
            });
            var dispatchers = data.dispatchers.map(function (d) {
                return el('tr', {}, [
                    el('td', { text: d.node }),
                    el('td', { text: d.answered ? 'yes' : 'no' }),
                    num(d.workers), num(d.slots), num(d.slots - d.busy)
                ]);
            });
            setMain([
                el('h1', { text: 'Queues' }),
                queues.length
                    ? table(['queue', 'dispatcher', 'depth', 'running', 'retrying', 'succeeded',
                             'failed', 'failed (last hour)', 'workers per node', 'replica lag (ms)'],
                            queues, { id: 'queues' })
                    : el('p', { className: 'muted', text: 'No queue has jobs or workers yet.' }),
                el('h2', { text: 'Dispatchers' }),
                table(['node', 'answered', 'workers', 'slots', 'free slots'], dispatchers,
                      { id: 'dispatchers' }),
                el('h2', { text: 'Peers' }),
                peers.length ? table(['node', 'endpoint', 'link', 'replica lag', 'replica seq'], peers,
                                     { id: 'peers' })
                             : el('p', { className: 'muted', text: 'This node has no peers.' })
            ]);
            return true;
        });
    }

    function jobRow(job) {
        return el('tr', { 'data-job': job.job_id }, [
            el('td', {}, [link('#/job/' + encodeURIComponent(job.job_id), job.job_id)]),
            el('td', {}, [stateSpan(job.state)]),
            el('td', { text: job.task }),
            num(job.rows),
            num(job.attempts),
            el('td', { text: zeroTime(job.created_at) ? '' : job.created_at }),
            el('td', { text: zeroTime(job.finished_at) ? '' : job.finished_at }),
            el('td', { className: 'error', text: job.error })
        ]);
    }

    function queuePage(queue, params) {
        var state = (params.get('state') || 'PENDING').toUpperCase();
        var query = '?state=' + state + '&limit=50';
        if (params.get('after'))
            query += '&after=' + encodeURIComponent(params.get('after'));
        if (params.get('dispatcher'))
            query += '&dispatcher=' + encodeURIComponent(params.get('dispatcher'));
        return get('/queues/' + encodeURIComponent(queue) + '/jobs' + query).then(function (data) {
            var base = '#/queue/' + encodeURIComponent(queue) + '?';
            var keep = params.get('dispatcher') ? '&dispatcher=' + encodeURIComponent(params.get('dispatcher')) : '';
            var tabs = el('p', { className: 'tabs' }, STATES.map(function (s) {
                var count = data.counts && data.counts[s] !== undefined ? data.counts[s] : 0;
                var a = link(base + 'state=' + s + keep, s + ' (' + count + ')');
                if (s === state)
                    a.className = 'current';
                return a;
            }));
            var next = data.next
                ? link(base + 'state=' + state + keep + '&after=' + encodeURIComponent(data.next), 'next page')
                : null;
            setMain([
                el('h1', { text: 'Queue ' + queue }),
                el('p', { className: 'muted', text: 'dispatcher ' + (data.dispatcher || 'none') +
                          ', ' + data.total + ' ' + state + ' jobs' }),
                tabs,
                data.jobs.length
                    ? table(['job', 'state', 'task', 'rows', 'attempts', 'created', 'finished', 'error'],
                            data.jobs.map(jobRow), { id: 'jobs' })
                    : el('p', { className: 'muted', text: 'No ' + state + ' jobs.' }),
                el('p', {}, [params.get('after') ? link(base + 'state=' + state + keep, 'first page') : null,
                             params.get('after') && next ? ' · ' : null, next])
            ]);
            return true;
        });
    }

    function field(list, name, value) {
        list.appendChild(el('dt', { text: name }));
        list.appendChild(el('dd', { 'data-field': name },
                            [value instanceof Node ? value : String(value === null ? '' : value)]));
    }

    function cancelButton(id, purge, label) {
        return el('button', { id: purge ? 'purge' : 'cancel', className: 'danger', type: 'button', text: label,
            onclick: function (event) {
                var question = purge ? 'Purge job ' + id + '? Its record and results are deleted.'
                                     : 'Cancel job ' + id + '? A running query is stopped.';
                if (!window.confirm(question))
                    return;
                event.target.disabled = true;
                request('DELETE', '/jobs/' + encodeURIComponent(id) + (purge ? '?purge=true' : ''))
                    .then(function () { status(purge ? 'purged' : 'cancelled'); route(); })
                    .catch(function (error) { status(error.message || String(error)); event.target.disabled = false; });
            } });
    }

    function preview(data) {
        if (!data)
            return null;
        if (data.error)
            return el('p', { className: 'error', id: 'preview-error', text: data.error });
        var head = data.columns.map(function (c) { return c.name + ' (' + c.type + ')'; });
        var rows = data.rows.map(function (row) {
            return el('tr', {}, row.map(function (cell) {
                return cell === null ? el('td', { className: 'muted', text: 'NULL' }) : el('td', { text: cell });
            }));
        });
        return el('div', {}, [table(head, rows, { id: 'preview' }),
                              data.more ? el('p', { className: 'muted', text: 'first ' + data.rows.length +
                                                                            ' rows shown' }) : null]);
    }

    function jobPage(id) {
        return get('/jobs/' + encodeURIComponent(id) + '/detail').then(function (job) {
            var list = el('dl', { className: 'fields', id: 'fields' });
            var state = stateSpan(job.state);
            state.id = 'job-state';
            field(list, 'state', state);
            field(list, 'queue', link('#/queue/' + encodeURIComponent(job.queue) + '?state=' + job.state, job.queue));
            field(list, 'task', job.task);
            field(list, 'args', JSON.stringify(job.args));
            field(list, 'rows', job.rows);
            field(list, 'attempts', job.attempts + ' (retries allowed: ' + job.max_retries +
                  ', runs lost to a dead worker: ' + job.interruptions + ')');
            field(list, 'error', el('span', { className: 'error', text: job.error }));
            field(list, 'worker', job.worker);
            field(list, 'created', zeroTime(job.created_at) ? '' : job.created_at);
            field(list, 'eta', zeroTime(job.eta) ? '' : job.eta);
            field(list, 'started', zeroTime(job.started_at) ? '' : job.started_at);
            field(list, 'finished', zeroTime(job.finished_at) ? '' : job.finished_at);
            if (!zeroTime(job.started_at)) {
                var end = zeroTime(job.finished_at) ? Date.now() : Date.parse(job.finished_at);
                field(list, 'elapsed', Math.max(0, (end - Date.parse(job.started_at)) / 1000).toFixed(1) + ' s' +
                      (zeroTime(job.finished_at) ? ' so far' : ''));
            }
            field(list, 'group', job.group_id ? link('#/group/' + encodeURIComponent(job.group_id), job.group_id) : '');
            field(list, 'db', job.db || '');
            field(list, 'results backend', job.results);
            field(list, 'results table', job.results_table);
            field(list, 'results expire', job.results_expire_at || '');
            field(list, 'time limit', job.ttl_ms ? job.ttl_ms + ' ms' : 'none');
            field(list, 'cancelled', job.cancelled ? 'yes' : 'no');
            field(list, 'dispatcher', job.dispatcher + (job.replica_lag_ms ? ' (replica ' + job.replica_lag_ms +
                                                         ' ms behind)' : ''));
            var final = job.state === 'SUCCESS' || job.state === 'FAILURE';
            var downloads = job.downloads.csv
                ? el('p', { id: 'downloads' }, ['Download: ',
                      el('a', { id: 'download-csv', href: new URL(job.downloads.csv.replace(/^\//, ''), api).href,
                                text: 'CSV' }), ' · ',
                      el('a', { id: 'download-json', href: new URL(job.downloads.json.replace(/^\//, ''), api).href,
                                text: 'JSON' })])
                : null;
            setMain([
                el('h1', { text: 'Job ' + job.job_id }),
                list,
                el('p', {}, [final ? cancelButton(job.job_id, true, 'Purge') : cancelButton(job.job_id, false, 'Cancel')]),
                downloads,
                job.preview ? el('h2', { text: 'Results preview' }) : null,
                preview(job.preview)
            ]);
            return !final;                      //  poll while it may change
        });
    }

    function groupPage(id) {
        return get('/groups/' + encodeURIComponent(id)).then(function (group) {
            setMain([
                el('h1', { text: 'Group ' + group.group_id }),
                el('p', {}, ['state ', stateSpan(group.state), ', concurrency ' +
                             (group.concurrency || 'unlimited') + ', dispatcher ' + group.dispatcher]),
                table(['job', 'state', 'task', 'rows', 'attempts', 'created', 'finished', 'error'],
                      group.jobs.map(jobRow), { id: 'jobs' })
            ]);
            return group.state === 'STARTED';
        });
    }

    //  -- routing and polling -----------------------------------------------

    function route() {
        if (timer)
            clearTimeout(timer);
        timer = null;
        var mine = ++generation;
        var hash = location.hash.replace(/^#/, '') || '/';
        var query = hash.indexOf('?');
        var params = new URLSearchParams(query >= 0 ? hash.slice(query + 1) : '');
        var parts = (query >= 0 ? hash.slice(0, query) : hash).split('/').filter(Boolean).map(decodeURIComponent);
        var view;
        if (parts[0] === 'queue' && parts[1])
            view = function () { return queuePage(parts[1], params); };
        else if (parts[0] === 'job' && parts[1])
            view = function () { return jobPage(parts[1]); };
        else if (parts[0] === 'group' && parts[1])
            view = function () { return groupPage(parts[1]); };
        else
            view = overview;
        function tick() {
            view().then(function (again) {
                if (mine !== generation)
                    return;
                status('updated ' + new Date().toLocaleTimeString());
                if (again)
                    timer = setTimeout(tick, POLL_MS);
            }).catch(function (error) {
                if (mine !== generation)
                    return;
                if (error instanceof NeedToken) {
                    var had = sessionStorage.getItem(TOKEN_KEY);
                    sessionStorage.removeItem(TOKEN_KEY);
                    askToken(had ? 'That token was refused.' : '');
                    return;
                }
                if (error.status === 404)
                    setMain([el('p', { className: 'error', id: 'not-found', text: error.message })]);
                status('error: ' + (error.message || String(error)));
                timer = setTimeout(tick, POLL_MS);
            });
        }
        tick();
    }

    window.addEventListener('hashchange', route);
    route();
})();
