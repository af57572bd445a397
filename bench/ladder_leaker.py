import os, select, signal, sys, time
step, every, limit = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]) << 20
line = [l for l in open("/proc/self/cgroup").read().splitlines() if "memory" in l.split(":")[1].split(",")][0]
cg = "/sys/fs/cgroup/memory" + line.split(":", 2)[2]
def usage():
    return int(open(cg + "/memory.usage_in_bytes").read())
def counted():
    stat = dict(l.split() for l in open(cg + "/memory.stat").read().splitlines())
    return int(stat["total_rss"]) + int(stat["total_mapped_file"])
crossed = {}
def term(*_):
    # A byte that came before SIGTERM but was not read yet (this process was not scheduled in
    # between, on a loaded machine): svcd told it first all the same.
    if fd is not None and not told and "notify" in crossed:
        try:
            if os.read(fd, 64):
                note_told(time.monotonic())
        except BlockingIOError:
            pass
    if "max" in crossed:
        print("restart %.1f" % ((time.monotonic() - crossed["max"]) * 1e3), flush=True)
    sys.exit(0)
def note_told(now):
    global told
    told = True
    print("notify %.1f" % ((now - crossed["notify"]) * 1e3), flush=True)
watch = os.environ.get("MEMORY_PRESSURE_WATCH")
fd = os.open(watch, os.O_RDONLY | os.O_NONBLOCK) if watch else None
told = False
signal.signal(signal.SIGTERM, term)
chunks = []
while True:
    chunks.append(b"l" * (step << 20))
    now = time.monotonic()
    if usage() >= limit * 9 // 10:
        crossed.setdefault("notify", now)
    if counted() > limit:
        crossed.setdefault("max", now)
    deadline = now + every
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready = select.select([fd] if fd is not None else [], [], [], left)[0]
        if ready:
            os.read(fd, 64)
            if not told and "notify" in crossed:
                note_told(time.monotonic())
            elif not told:
                # A byte before this process saw 90% itself: svcd's view of the crossing came
                # first (usage_in_bytes is fuzzy on v1). Told at once, if it is that near.
                share = usage() * 100 / limit
                print("early byte at %.1f%% of the limit" % share, flush=True)
                if share >= 80:
                    crossed.setdefault("notify", time.monotonic())
                    note_told(crossed["notify"])
