# gunicorn settings for running under preforkd: preforkd is the process manager, so one
# gunicorn worker per preforkd worker (raise `threads` for I/O-bound apps instead).
chdir = "@DIR@"
workers = 1
threads = 4               # a slow request does not hold up the others (gthread worker)
# Import the app in the arbiter, before it tells preforkd READY=1: a broken app then
# fails the start (and rolls a reload back) instead of being reported ready.
preload_app = True
graceful_timeout = 30
# no `bind`: the socket comes from preforkd through LISTEN_FDS
