/*
 * berth-init: a container's init, as the JavaScript `runInit` in src/runtime/init.ts does it,
 * but without a copy of the zygote's address space. The zygote makes a new PID namespace for
 * its children (unshare), starts this program with posix_spawn (vfork + exec of these few KiB)
 * and goes back to its own PID namespace: this process is PID 1 of the new one.
 *
 *   berth-init            (no arguments; an empty environment)
 *
 * File descriptors at start (those of berth-exec):
 *   3  the error pipe (made close-on-exec here): a failure report, the terminal's master, the
 *      exec marker (see EXEC_MARKER and TERMINAL_MARKER in init.ts)
 *   4  the control pipe (read end): the plan, then the cgroup ack byte, then (with a terminal)
 *      one byte once the zygote has taken the terminal's master
 *   5  stdin, or not open (then /dev/null inside the container)
 *   6  stdout, 7 stderr (unused with a terminal)
 * Any other fd is closed at once.
 *
 * The plan (written by `encodeInitPlan` in src/runtime/native-init.ts) is a little-endian u32
 * length and that many bytes: the magic field "berth-init-plan-1", then records, each a key and
 * a fixed number of fields, every one a NUL-terminated string. Numbers are decimal, except the
 * capability mask (hex). An empty string stands for a null mount source or data. See KEYS below.
 *
 * Steps, in the order of runInit (the step names are the ones its failures carry): prepare
 * (PDEATHSIG, new session, default signal dispositions, unshare, private mounts, loopback up),
 * join network, rootfs (overlay), bind sources and mount sources (detached clones of host paths,
 * open_tree), cgroups (v1: the ack, then `tasks`), pivot_root, the standard mounts, devices and
 * symlinks, binds, the container's own mounts, sysctls, masked paths, cgroups (v2: the ack; then
 * the container's own cgroup at /sys/fs/cgroup), hostname, user (the container's /etc/passwd and
 * /etc/group, resolved as user.ts does), stdio (pipes or a terminal made on the container's
 * devpts), workdir, read-only root, oom_score_adj, rlimits, (with a user namespace: join it),
 * keyring (a new session keyring), seccomp (before the capabilities without no_new_privs, after
 * the workdir with it), capabilities (no inheritable or ambient ones), exec (an `init` reaper
 * forks first, under the filter too). With a user namespace (`userns`, see its section below)
 * the init makes it after "prepare", idmaps the root, binds and volumes, and joins it after the
 * limits (which need the host's capabilities) and before the keyring (which it then owns).
 * A failure is written as JSON on the error pipe:
 *   {"step":S,"message":M,"kind":K[,"syscall":C,"errno":N],"exitCode":X}
 * and the process exits with X. A kernel failure's message ends in "failed": the zygote adds the
 * errno's name.
 */
#include "sys.h"

enum { ERROR_FD = 3, CTRL_FD = 4, STDIN_FD = 5, STDOUT_FD = 6, STDERR_FD = 7, MAX_PLAN = 1 << 20 };
enum {
  SIG_BLOCK = 0, SIG_SETMASK = 2, F_OK = 0, S_IFDIR = 0040000,
  TIOCSPTLCK = 0x40045431, TIOCGPTN = (int)0x80045430, TIOCGPTPEER = 0x5441, TIOCSWINSZ = 0x5414, TIOCSCTTY = 0x540e,
  TIOCSPGRP = 0x5410, MOUNT_ATTR_RDONLY = 1, PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20,
};

/* ---- failures ------------------------------------------------------------------------------ */

static const char *step = "prepare";
static char step_buf[4200];
static char msg[8192];
static char detail[8400];

/* Concatenates up to four strings into `buf` (of `size` bytes), cut short when they do not fit. */
static char *cat(char *buf, unsigned long size, const char *a, const char *b, const char *c, const char *d) {
  const char *parts[4] = {a, b, c, d};
  char *p = buf, *end = buf + size - 1;
  for (int k = 0; k < 4; k++)
    for (const char *s = parts[k]; s && *s && p < end; s++) *p++ = *s;
  *p = 0;
  return buf;
}

static void set_step(const char *a, const char *b) {
  step = b ? cat(step_buf, sizeof step_buf, a, b, 0, 0) : a;
}

/* Writes the failure report (message `m`) on the error pipe and exits with `code`. */
static __attribute__((noreturn)) void fail(const char *kind, const char *m, const char *syscall, long err, int code) {
  report_failure(ERROR_FD, step, &m, 1, kind, syscall, err, code);
}

/* A failure that is not the kernel's: "<step>: a b c" (as init.ts's failureOf words it). */
static __attribute__((noreturn)) void fail_other(const char *a, const char *b, const char *c) {
  fail("other", cat(msg, sizeof msg, step, ": ", cat(detail, sizeof detail, a, b, c, 0), 0), 0, 0, 1);
}

/* A failed system call: "<step>: syscall(what) failed", with its errno (named by the zygote). */
static long must(long r, const char *syscall, const char *what) {
  if (r < 0 && r > -4096) {
    char *end = msg + sizeof msg - 16, *p = msg;
    for (const char *parts[3] = {step, ": ", syscall}, **s = parts; s < parts + 3; s++)
      for (const char *c = *s; *c && p < end; c++) *p++ = *c;
    if (what && *what) {
      *p++ = '(';
      for (const char *c = what; *c && p < end; c++) *p++ = *c;
      *p++ = ')';
    }
    *put_str(p, " failed") = 0;
    fail("kernel", msg, syscall, -r, 1);
  }
  return r;
}

/* ---- small helpers ------------------------------------------------------------------------- */

static unsigned long len(const char *s) {
  unsigned long n = 0;
  while (s[n]) n++;
  return n;
}

static int starts(const char *s, const char *prefix) {
  while (*prefix && *s == *prefix) s++, prefix++;
  return !*prefix;
}

static char *arena;
static unsigned long arena_left;

/* Memory that is never freed (the process execs or exits soon). */
static void *alloc(unsigned long n) {
  n = (n + 15) & ~15ul;
  if (n > arena_left) {
    unsigned long size = n > (1ul << 20) ? n : (1ul << 20);
    long p = sys6(NR_mmap, 0, (long)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p < 0 && p > -4096) must(p, "mmap", 0);
    arena = (char *)p;
    arena_left = size;
  }
  void *r = arena;
  arena += n;
  arena_left -= n;
  return r;
}

static char *num_str(long long v) {
  char *b = (char *)alloc(24);
  *put_num(b, v) = 0;
  return b;
}

static long retry(long n, long a, long b, long c) {
  long r;
  do r = sys3(n, a, b, c);
  while (r == -EINTR);
  return r;
}

/* Reads exactly `n` bytes; 0 at end of file (or an error) before that. */
static int read_exactly(int fd, char *buf, unsigned long n) {
  while (n > 0) {
    long got = retry(NR_read, fd, (long)buf, (long)n);
    if (got <= 0) return 0;
    buf += got, n -= (unsigned long)got;
  }
  return 1;
}

static long stat_mode(const char *path, long *mode) {
  struct statx_k st;
  long r = sys6(NR_statx, AT_FDCWD, (long)path, 0, STATX_TYPE | STATX_MODE, (long)&st, 0);
  if (r == 0) *mode = st.mode;
  return r;
}

/* access(2) with F_OK: whether `path` exists (following symlinks), as kernel/fs.ts `exists`. */
static int exists(const char *path) {
  return sys3(NR_faccessat, AT_FDCWD, path, F_OK) == 0;
}

static int is_dir(const char *path) {
  long mode = 0;
  must(stat_mode(path, &mode), "stat", path);
  return (mode & S_IFMT) == S_IFDIR;
}

static void mkdir_one(const char *path, int mode, int exist_ok) {
  long r = sys3(NR_mkdirat, AT_FDCWD, path, mode);
  if (r == -EEXIST && exist_ok) return;
  must(r, "mkdir", path);
}

/* `mkdir -p` of an absolute path, as kernel/fs.ts `mkdirAll` (every part, from the root). */
static void mkdir_all(const char *path, int mode) {
  char *cur = (char *)alloc(len(path) + 2), *p = cur;
  const char *s = path;
  for (;;) {
    while (*s == '/') s++;
    if (!*s) break;
    *p++ = '/';
    while (*s && *s != '/') *p++ = *s++;
    *p = 0;
    mkdir_one(cur, mode, 1);
  }
}

static void do_mount(const char *source, const char *target, const char *fstype, long flags, const char *data) {
  const char *what = cat(detail, sizeof detail, source ? source : "none", " on ", target, fstype ? cat(msg, 512, " type ", fstype, 0, 0) : "");
  must(sys6(NR_mount, (long)source, (long)target, (long)fstype, flags, (long)data, 0), "mount", what);
}

static const char *opt(const char *s) {
  return s && *s ? s : 0;
}

/* ---- the plan ------------------------------------------------------------------------------ */

struct bind { const char *source, *target; int ro, dir; long fd; };
struct user_mount { int tmpfs, ro, dir, copy, idmap; const char *source, *target, *data; long prop, fd; };
struct plan_mount { const char *source, *target, *fstype, *data; long flags; };
struct device { const char *path; long major, minor, mode; };

static struct {
  long flags, netns_pid, cols, rows;
  int tty, rootro, nnp, init;
  u64 caps;
  char *seccomp;
  const char *mount_point, *root_data, *host, *domain, *user, *cwd;
  const char **tasks, **masks, **ropaths, **links;
  struct bind *binds;
  struct user_mount *umounts;
  struct plan_mount *mounts;
  struct device *devices;
  char **args, **env;
  int n_tasks, n_masks, n_ropaths, n_links, n_binds, n_umounts, n_mounts, n_devices, n_args, n_env;
} plan;

/* Every record: its key and how many fields follow. */
static const struct { const char *key; int fields; } KEYS[] = {
  {"flags", 1},   /* unshare flags */
  {"netns", 1},   /* pid whose network namespace is joined */
  {"task", 1},    /* a v1 `tasks` file to write 0 to */
  {"root", 2},    /* overlay mount point, overlay data */
  {"bind", 3},    /* host source, target, read-only 0/1 */
  {"vbind", 6},   /* user bind: source, target, read-only, propagation flags (0: none), is a directory, copy up */
  {"tmpfs", 3},   /* user tmpfs: target, read-only, data */
  {"mount", 5},   /* source, target, fstype, flags, data */
  {"dev", 4},     /* path, major, minor, mode */
  {"link", 2},    /* symlink target, path */
  {"mask", 1},    /* masked path */
  {"ropath", 1},  /* read-only path */
  {"rootro", 0},  /* read-only root */
  {"host", 1},    /* hostname */
  {"domain", 1},  /* NIS domain name */
  {"user", 1},    /* user[:group] */
  {"tty", 2},     /* terminal columns, rows */
  {"cwd", 1},     /* working directory */
  {"caps", 1},    /* capability mask, hex */
  {"nnp", 0},     /* no_new_privs */
  {"init", 0},    /* a reaper as PID 1 */
  {"seccomp", 1}, /* seccomp filter: struct sock_filter[], hex */
  {"arg", 1},     /* one argv entry */
  {"env", 1},     /* one environment entry */
  {"rlimit", 3},  /* resource limit: RLIMIT_* number, soft, hard (-1: unlimited) */
  {"sysctl", 2},  /* path under /proc/sys, value */
  {"oom", 1},     /* oom_score_adj */
  {"cgmount", 5}, /* a mount of the container's own cgroup, made in its cgroup namespace (as "mount") */
  {"userns", 4},  /* user namespace: uid_map, gid_map (as written to /proc/PID/uid_map), host uid and gid of root */
  {"idlower", 1}, /* with userns: a lower dir of the root, topmost first (idmapped) */
  {"idupper", 3}, /* with userns: the dir holding upper and work dirs (idmapped), upper's name, work's name */
  {"idmap", 0},   /* with userns: idmap the vbind just before */
};
enum { N_KEYS = sizeof KEYS / sizeof KEYS[0] };
static const char MAGIC[] = "berth-init-plan-1";

static const char *cursor, *plan_end;

/* ---- user namespace: the plan's part (see the userns section further down) ------------------ */

static struct {
  const char *uid_map, *gid_map, *upper_dir, *upper, *work, **lowers;
  long root_uid, root_gid, fd;
  int n_lowers;
} userns = {0, 0, 0, 0, 0, 0, 0, 0, -1, 0};

/* The host id of container id `id` in `map` ("inside outside count" lines); -1 when unmapped. */
static long userns_host_id(const char *map, long id) {
  if (!map) return id;
  long v[3] = {0, 0, 0};
  for (int k = 0; *map; k = 0) {
    for (; k < 3; k++) {
      while (*map == ' ' || *map == '\n') map++;
      for (v[k] = 0; *map >= '0' && *map <= '9'; map++) v[k] = v[k] * 10 + (*map - '0');
    }
    if (id >= v[0] && id - v[0] < v[2]) return v[1] + id - v[0];
    while (*map == ' ' || *map == '\n') map++;
  }
  return -1;
}

static const char *field(void) {
  const char *s = cursor;
  while (cursor < plan_end && *cursor) cursor++;
  if (cursor >= plan_end) fail_other("truncated plan", "", "");
  cursor++;
  return s;
}

/* A decimal number in [0, max]. */
static long long dec(const char *s, long long max) {
  long long v = 0;
  if (!*s) fail_other("bad number in plan: ", s, "");
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10) fail_other("bad number in plan: ", s, "");
    v = v * 10 + (*s - '0');
  }
  return v;
}

static int flag(const char *s) {
  return (int)dec(s, 1);
}

static u64 hex(const char *s) {
  u64 v = 0;
  if (!*s || len(s) > 16) fail_other("bad mask in plan", "", "");
  for (; *s; s++) {
    int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
    if (d < 0) fail_other("bad mask in plan", "", "");
    v = v * 16 + (u64)d;
  }
  return v;
}

static int key_of(const char *k) {
  for (int i = 0; i < N_KEYS; i++)
    if (eq(k, KEYS[i].key)) return i;
  fail_other("unknown plan record ", k, "");
}

/* ---- limits: resource limits, sysctls, oom_score_adj, the container's view of its cgroup -------- */

struct rlimit_rec { long resource; u64 soft, hard; };
static struct {
  struct rlimit_rec *rlimits;
  const char **sysctls; /* path, value, … */
  struct plan_mount *cgmounts;
  int n_rlimits, n_sysctls, n_cgmounts, has_oom;
  long oom;
} lim;

static void alloc_limits(const int *count) {
  lim.rlimits = (struct rlimit_rec *)alloc(sizeof(struct rlimit_rec) * (unsigned long)(count[key_of("rlimit")] + 1));
  lim.sysctls = (const char **)alloc(sizeof(char *) * 2 * (unsigned long)(count[key_of("sysctl")] + 1));
  lim.cgmounts = (struct plan_mount *)alloc(sizeof(struct plan_mount) * (unsigned long)(count[key_of("cgmount")] + 1));
}

static u64 rlimit_value(const char *s) {
  return eq(s, "-1") ? ~0ull : (u64)dec(s, 0x7fffffffffffffffll);
}

/* Reads one record of the keys above (pass 2 of read_plan). */
static void read_limit(const char *key) {
  if (eq(key, "rlimit")) {
    struct rlimit_rec *r = &lim.rlimits[lim.n_rlimits++];
    r->resource = (long)dec(field(), 63), r->soft = rlimit_value(field()), r->hard = rlimit_value(field());
  } else if (eq(key, "sysctl")) {
    lim.sysctls[2 * lim.n_sysctls] = field();
    lim.sysctls[2 * lim.n_sysctls + 1] = field();
    lim.n_sysctls++;
  } else if (eq(key, "oom")) {
    const char *s = field();
    lim.has_oom = 1, lim.oom = *s == '-' ? -(long)dec(s + 1, 1000) : (long)dec(s, 1000);
  } else if (eq(key, "cgmount")) {
    struct plan_mount *m = &lim.cgmounts[lim.n_cgmounts++];
    m->source = opt(field()), m->target = field(), m->fstype = opt(field()), m->flags = (long)dec(field(), 0x7fffffff), m->data = opt(field());
  }
}

/* Reads the plan from the control pipe; exits quietly when the pipe closes without one. */
static void read_plan(void) {
  unsigned char header[4];
  if (!read_exactly(CTRL_FD, (char *)header, 4)) exit_now(0);
  unsigned long n = header[0] | header[1] << 8 | header[2] << 16 | (unsigned long)header[3] << 24;
  if (n == 0 || n > MAX_PLAN) fail_other("plan too large", "", "");
  char *body = (char *)alloc(n);
  if (!read_exactly(CTRL_FD, body, n)) exit_now(0);
  if (body[n - 1] != 0) fail_other("truncated plan", "", "");
  plan_end = body + n;
  cursor = body;
  if (!eq(field(), MAGIC)) fail_other("not a berth-init plan", "", "");
  /* Pass 1: count each key, for the arrays. */
  int count[N_KEYS] = {0};
  const char *start = cursor;
  while (cursor < plan_end) {
    int k = key_of(field());
    count[k]++;
    for (int f = 0; f < KEYS[k].fields; f++) field();
  }
#define ARRAY(type, key) (type *)alloc(sizeof(type) * (unsigned long)(count[key_of(key)] + 2))
  plan.tasks = ARRAY(const char *, "task");
  plan.masks = ARRAY(const char *, "mask");
  plan.ropaths = ARRAY(const char *, "ropath");
  plan.links = (const char **)alloc(sizeof(char *) * 2 * (unsigned long)(count[key_of("link")] + 1));
  plan.binds = ARRAY(struct bind, "bind");
  plan.umounts = (struct user_mount *)alloc(sizeof(struct user_mount) * (unsigned long)(count[key_of("vbind")] + count[key_of("tmpfs")] + 1));
  plan.mounts = ARRAY(struct plan_mount, "mount");
  plan.devices = ARRAY(struct device, "dev");
  plan.args = ARRAY(char *, "arg");
  plan.env = ARRAY(char *, "env"); /* room for HOME and the NULL */
  userns.lowers = ARRAY(const char *, "idlower");
#undef ARRAY
  alloc_limits(count);
  plan.cwd = "/";
  plan.host = "";
  plan.user = "";
  /* Pass 2: the values. */
  cursor = start;
  while (cursor < plan_end) {
    const char *key = field();
    if (eq(key, "flags")) plan.flags = (long)dec(field(), 0x7fffffff);
    else if (eq(key, "netns")) plan.netns_pid = (long)dec(field(), 0x7fffffff);
    else if (eq(key, "task")) plan.tasks[plan.n_tasks++] = field();
    else if (eq(key, "root")) plan.mount_point = field(), plan.root_data = field();
    else if (eq(key, "bind")) {
      struct bind *b = &plan.binds[plan.n_binds++];
      b->source = field(), b->target = field(), b->ro = flag(field());
    } else if (eq(key, "vbind")) {
      struct user_mount *m = &plan.umounts[plan.n_umounts++];
      m->source = field(), m->target = field(), m->ro = flag(field()), m->prop = (long)dec(field(), 0x7fffffff), m->dir = flag(field());
      m->copy = flag(field());
    } else if (eq(key, "tmpfs")) {
      struct user_mount *m = &plan.umounts[plan.n_umounts++];
      m->tmpfs = 1, m->target = field(), m->ro = flag(field()), m->data = opt(field());
    } else if (eq(key, "mount")) {
      struct plan_mount *m = &plan.mounts[plan.n_mounts++];
      m->source = opt(field()), m->target = field(), m->fstype = opt(field()), m->flags = (long)dec(field(), 0x7fffffff), m->data = opt(field());
    } else if (eq(key, "dev")) {
      struct device *d = &plan.devices[plan.n_devices++];
      d->path = field(), d->major = (long)dec(field(), 0xfff), d->minor = (long)dec(field(), 0xfffff), d->mode = (long)dec(field(), 07777);
    } else if (eq(key, "link")) {
      plan.links[2 * plan.n_links] = field();
      plan.links[2 * plan.n_links + 1] = field();
      plan.n_links++;
    } else if (eq(key, "mask")) plan.masks[plan.n_masks++] = field();
    else if (eq(key, "ropath")) plan.ropaths[plan.n_ropaths++] = field();
    else if (eq(key, "rootro")) plan.rootro = 1;
    else if (eq(key, "host")) plan.host = field();
    else if (eq(key, "domain")) plan.domain = field();
    else if (eq(key, "user")) plan.user = field();
    else if (eq(key, "tty")) plan.tty = 1, plan.cols = (long)dec(field(), 0xffff), plan.rows = (long)dec(field(), 0xffff);
    else if (eq(key, "cwd")) plan.cwd = field();
    else if (eq(key, "caps")) plan.caps = hex(field());
    else if (eq(key, "nnp")) plan.nnp = 1;
    else if (eq(key, "init")) plan.init = 1;
    else if (eq(key, "seccomp")) plan.seccomp = (char *)field();
    else if (eq(key, "arg")) plan.args[plan.n_args++] = (char *)field();
    else if (eq(key, "env")) plan.env[plan.n_env++] = (char *)field();
    else if (eq(key, "userns")) {
      userns.uid_map = field(), userns.gid_map = field();
      userns.root_uid = (long)dec(field(), 0xfffffffe), userns.root_gid = (long)dec(field(), 0xfffffffe);
    } else if (eq(key, "idlower")) userns.lowers[userns.n_lowers++] = field();
    else if (eq(key, "idupper")) userns.upper_dir = field(), userns.upper = field(), userns.work = field();
    else if (eq(key, "idmap") && plan.n_umounts > 0) plan.umounts[plan.n_umounts - 1].idmap = 1;
    else read_limit(key);
  }
  if (userns.uid_map && (!userns.upper_dir || !userns.n_lowers)) fail_other("the plan has a user namespace but no idmapped root", "", "");
  if (!plan.mount_point || !*plan.mount_point || !plan.root_data) fail_other("the plan has no root", "", "");
  plan.args[plan.n_args] = 0;
  plan.env[plan.n_env] = 0;
}

/* ---- the user, from the container's /etc/passwd and /etc/group (as user.ts) ------------------ */

/*
 * The whole file, NUL-terminated; 0 when it cannot be read (then it counts as empty). Only a
 * regular file is read: an image may make /etc/passwd a FIFO (an open or read that never
 * returns) or a link to /dev/zero (a read that never ends). As user.ts does.
 */
static char *read_file(const char *path) {
  long fd = sys6(NR_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0, 0, 0);
  if (fd < 0) return 0;
  struct statx_k st;
  if (sys6(NR_statx, fd, (long)"", AT_EMPTY_PATH, STATX_TYPE, (long)&st, 0) != 0 || (st.mode & S_IFMT) != S_IFREG) {
    sys3(NR_close, fd, 0, 0);
    return 0;
  }
  unsigned long cap = 65536, n = 0;
  char *buf = (char *)alloc(cap + 1);
  for (;;) {
    if (n == cap) {
      if (cap >= (64ul << 20)) break;
      char *bigger = (char *)alloc(2 * cap + 1);
      memcpy(bigger, buf, n);
      buf = bigger, cap *= 2;
    }
    long got = retry(NR_read, fd, (long)(buf + n), (long)(cap - n));
    if (got < 0) {
      sys3(NR_close, fd, 0, 0);
      return 0;
    }
    if (got == 0) break;
    n += (unsigned long)got;
  }
  sys3(NR_close, fd, 0, 0);
  buf[n] = 0;
  return buf;
}

enum { MAX_FIELDS = 8 };
/* One line split at ':' (the line is cut in place); returns the number of fields. */
static int split_line(char *line, char **f) {
  int n = 0;
  f[n++] = line;
  for (char *p = line; *p; p++)
    if (*p == ':') {
      *p = 0;
      if (n < MAX_FIELDS) f[n++] = p + 1;
      else n++;
    }
  return n;
}

/* Walks the lines of `text`, skipping empty ones and comments: the next one, cut in place, or 0. */
static char *next_line(char **text) {
  while (*text && **text) {
    char *line = *text, *p = line;
    while (*p && *p != '\n') p++;
    if (*p) *p++ = 0;
    *text = p;
    if (*line && *line != '#') return line;
  }
  return 0;
}

/*
 * An id as JavaScript's Number() reads a field: blanks around it ignored, empty is 0. Only
 * decimal digits are taken (anything else: -1, matching no id); large values saturate.
 */
static long long js_id(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  long long v = 0;
  for (; *s >= '0' && *s <= '9'; s++) v = v > (1ll << 40) ? v : v * 10 + (*s - '0');
  while (*s == ' ' || *s == '\t' || *s == '\r') s++;
  return *s ? -1 : v;
}

static int all_digits(const char *s, unsigned long n) {
  if (n == 0) return 0;
  for (unsigned long i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static int same(const char *a, const char *b, unsigned long n) {
  for (unsigned long i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return !b[n];
}

struct user { long long uid, gid; unsigned *groups; int n_groups; const char *home; };

static char *copy_n(const char *s, unsigned long n) {
  char *c = (char *)alloc(n + 1);
  memcpy(c, s, n);
  c[n] = 0;
  return c;
}

/* A numeric id of a user string; beyond 12 digits it is out of range anyway. */
static long long spec_id(const char *s) {
  return len(s) > 12 ? 1ll << 40 : js_id(s);
}

/* resolveUserFrom in user.ts: `user[:group]`, names or ids; errors are "user" failures. */
static void resolve_user(const char *spec, struct user *u) {
  const char *colon = spec;
  while (*colon && *colon != ':') colon++;
  char *user_part = copy_n(spec, (unsigned long)(colon - spec));
  int has_group = *colon == ':';
  char *group_part = 0;
  if (has_group) {
    const char *g = colon + 1, *e = g;
    while (*e && *e != ':') e++;
    group_part = copy_n(g, (unsigned long)(e - g));
  }
  char *text = read_file("/etc/passwd");
  char *f[MAX_FIELDS];
  const char *name = 0;
  u->uid = 0, u->gid = 0, u->home = "/", u->n_groups = 0, u->groups = 0;
  if (!*user_part) {
    for (char *line; (line = next_line(&text));)
      if (split_line(line, f) >= 7 && js_id(f[2]) == 0) {
        u->home = f[5], name = f[0];
        break;
      }
  } else if (all_digits(user_part, len(user_part))) {
    u->uid = spec_id(user_part);
    for (char *line; (line = next_line(&text));)
      if (split_line(line, f) >= 7 && js_id(f[2]) == u->uid) {
        u->gid = js_id(f[3]), u->home = f[5], name = f[0];
        break;
      }
  } else {
    for (char *line; (line = next_line(&text));)
      if (split_line(line, f) >= 7 && eq(f[0], user_part)) {
        u->uid = js_id(f[2]), u->gid = js_id(f[3]), u->home = f[5], name = f[0];
        break;
      }
    if (!name) fail("user", cat(msg, sizeof msg, "unable to find user ", user_part, ": no matching entries in passwd file", 0), 0, 0, 1);
  }
  if (group_part && *group_part) {
    if (all_digits(group_part, len(group_part))) u->gid = spec_id(group_part);
    else {
      int found = 0;
      text = read_file("/etc/group");
      for (char *line; (line = next_line(&text));)
        if (split_line(line, f) >= 3 && eq(f[0], group_part)) {
          u->gid = js_id(f[2]), found = 1;
          break;
        }
      if (!found) fail("user", cat(msg, sizeof msg, "unable to find group ", group_part, ": no matching entries in group file", 0), 0, 0, 1);
    }
  }
  /* An id field that is no number at all (js_id: -1) is refused too, rather than taken for 0. */
  if (u->uid < 0 || u->gid < 0 || u->uid > 0xfffffffell || u->gid > 0xfffffffell)
    fail("user", cat(msg, sizeof msg, "user ", spec, ": id out of range", 0), 0, 0, 1);
  if (!*u->home) u->home = "/";
  if (!name || has_group) return;
  /* Supplementary groups, as initgroups(3): the primary group, then every group listing the user. */
  text = read_file("/etc/group");
  unsigned long max = 1;
  for (const char *p = text; p && *p; p++) max += *p == '\n';
  u->groups = (unsigned *)alloc(sizeof(unsigned) * (max + 1));
  u->groups[u->n_groups++] = (unsigned)u->gid;
  for (char *line; (line = next_line(&text));) {
    if (split_line(line, f) < 4) continue;
    long long gid = js_id(f[2]);
    int member = 0;
    for (char *m = f[3]; *m && !member;) {
      char *e = m;
      while (*e && *e != ',') e++;
      member = e > m && same(m, name, (unsigned long)(e - m));
      m = *e ? e + 1 : e;
    }
    if (!member || gid < 0 || gid > 0xfffffffell) continue;
    int dup = 0;
    for (int k = 0; k < u->n_groups; k++) dup |= u->groups[k] == (unsigned)gid;
    if (!dup) u->groups[u->n_groups++] = (unsigned)gid;
  }
}

/* ---- the steps ----------------------------------------------------------------------------- */

/* Makes `fd` available as `target`, without close-on-exec (dup3 refuses equal fds). */
static void place(long fd, int target) {
  if (fd == target) must(sys3(NR_fcntl, fd, F_SETFD, 0), "fcntl", 0);
  else must(sys3(NR_dup3, fd, target, 0), "dup3", 0);
}

static void loopback_up(void) {
  long fd = must(sys3(NR_socket, AF_INET, SOCK_DGRAM | O_CLOEXEC, 0), "socket", 0);
  char ifr[40];
  memset(ifr, 0, sizeof ifr);
  ifr[0] = 'l', ifr[1] = 'o';
  must(sys3(NR_ioctl, fd, SIOCGIFFLAGS, ifr), "ioctl", "SIOCGIFFLAGS lo");
  *(unsigned short *)(ifr + 16) |= IFF_UP;
  must(sys3(NR_ioctl, fd, SIOCSIFFLAGS, ifr), "ioctl", "SIOCSIFFLAGS lo");
  sys3(NR_close, fd, 0, 0);
}

/* The zygote's one byte that lets this process into its cgroups (see awaitCgroupAck in init.ts). */
static void await_cgroup_ack(void) {
  static int acked;
  if (acked) return;
  acked = 1;
  char ack = 0;
  int got = read_exactly(CTRL_FD, &ack, 1);
  if (!plan.tty) sys3(NR_close, CTRL_FD, 0, 0);
  if (!got || ack != '1') fail_other("the container could not be moved into its cgroups", "", "");
}

/* Creates a missing mount target: a directory, or an empty file for file binds (ensureMountTarget). */
static void ensure_mount_target(const char *target, int dir) {
  if (exists(target)) return;
  unsigned long n = len(target), slash = 0;
  for (unsigned long i = 0; i < n; i++)
    if (target[i] == '/') slash = i;
  char *parent = (char *)alloc(n + 2);
  memcpy(parent, target, slash);
  parent[slash] = 0;
  mkdir_all(slash ? parent : "/", 0755);
  if (dir) mkdir_one(target, 0755, 1);
  else sys3(NR_close, must(sys6(NR_openat, AT_FDCWD, (long)target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644, 0, 0), "open", target), 0, 0);
}

/* Attaches a detached mount (open_tree) at `target`, a symlink there resolved inside the new root. */
static void attach(long fd, const char *target) {
  must(sys6(NR_move_mount, fd, (long)"", AT_FDCWD, (long)target, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS, 0), "move_mount",
       cat(detail, sizeof detail, "to ", target, 0, 0));
  sys3(NR_close, fd, 0, 0);
}

/* ---- copy-up (copy-up.ts) ------------------------------------------------------------------ */

struct dirent64_k { u64 ino; long long off; unsigned short reclen; unsigned char type; char name[]; };
struct statx_ts { long long sec; unsigned nsec; int reserved; };
/* statx(2)'s result, with the times and the device (struct statx of <linux/stat.h>). */
struct statx_full {
  unsigned mask, blksize; u64 attributes; unsigned nlink, uid, gid; unsigned short mode, spare0;
  u64 ino, size, blocks, attributes_mask; struct statx_ts atime, btime, ctime, mtime;
  unsigned rdev_major, rdev_minor, dev_major, dev_minor; char rest[256 - 144];
};
enum { S_IFLNK = 0120000, STATX_BASIC_STATS = 0x7ff, SEEK_SET = 0 };
#if defined(__x86_64__)
enum { NR_fchmod = 91 };
#else
enum { NR_fchmod = 52 };
#endif
static char copy_buf[65536];
static char copy_dents[4096];
static char copy_link[4097];

/* Owner, mode (not of a symlink) and times of `name` in `dir`, from `st`, as copyTree sets them. */
static void copy_attributes(long dir, const char *name, const struct statx_full *st, int link) {
  must(sys6(NR_fchownat, dir, (long)name, st->uid, st->gid, AT_SYMLINK_NOFOLLOW, 0), "fchownat", name);
  if (!link) must(sys6(NR_fchmodat, dir, (long)name, st->mode & 07777, 0, 0, 0), "fchmodat", name);
  struct timespec_k times[2] = {{(long)st->atime.sec, st->atime.nsec}, {(long)st->mtime.sec, st->mtime.nsec}};
  must(sys6(NR_utimensat, dir, (long)name, (long)times, AT_SYMLINK_NOFOLLOW, 0, 0), "utimensat", name);
}

/* A directory: its device and inode. */
struct dir_id { u64 ino; unsigned major, minor; };

/*
 * A directory copy_tree is in, below the top: where the listing of the one above goes on once it
 * is done, which directories it copies from and to, and the owner, mode and times the copy gets
 * once its content is in (taken before it was read: reading may change its atime).
 */
struct copy_level {
  long long resume;
  struct dir_id from, to;
  unsigned uid, gid, mode;
  struct statx_ts atime, mtime;
};
/* The walk's levels, on the heap (alloc): copy_levels[1..depth] are in use. */
static struct copy_level *copy_levels;
static long copy_cap;

static struct dir_id id_of(long fd, const char *name) {
  struct statx_full st;
  must(sys6(NR_statx, fd, (long)"", AT_EMPTY_PATH, STATX_BASIC_STATS, (long)&st, 0), "statx", name);
  struct dir_id id = {st.ino, st.dev_major, st.dev_minor};
  return id;
}

/*
 * The directory above `fd`, opened through "..", checked to be `want`: one that was moved
 * meanwhile (by another container sharing the volume, say) fails the start, rather than having
 * the copy go on somewhere else.
 */
static long parent_of(long fd, const struct dir_id *want) {
  long up = must(sys6(NR_openat, fd, (long)"..", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0), "open", "..");
  struct dir_id got = id_of(up, "..");
  if (got.ino != want->ino || got.major != want->major || got.minor != want->minor)
    fail_other("copy-up: a directory was moved while it was copied", "", "");
  return up;
}

/*
 * Docker's volume copy-up (copyTree in copy-up.ts): copies the tree under the directory `from`
 * into the directory `to`, keeping owners, modes, symlinks (as links, never followed) and times;
 * devices, FIFOs and sockets are not copied. Every name is taken relative to an fd of its own
 * directory, opened without following a symlink.
 *
 * Any depth is copied whole, with no recursion and a fixed number of fds: the walk goes down
 * and up one directory at a time, with the fds of the current directory and of the top open
 * only. Going down, it notes where the listing above goes on (the entry's d_off) in a record
 * kept on the heap (copy_level, ~90 bytes a level); coming back up, it reopens the parent through
 * ".." (checked to be the same directory, see parent_of) and seeks its listing there. The top's
 * fds stay open, since the volume now covers the image's directory: ".." from a first-level
 * directory would land on the volume. A tree too deep for memory fails the start with mmap's
 * ENOMEM (a report, not a crash); the process stack does not grow with the depth.
 *
 * Time: each ".." in a volume (a bind mount of a subdirectory) costs the kernel a walk up to the
 * mount's root (path_connected), so very deep trees cost depth² — measured ~1 s for 10,000
 * levels, ~75 s for 50,000. An image layer cannot hold such a tree anyway: berth unpacks layers
 * by full paths, which PATH_MAX bounds to ~2000 levels.
 */
static void copy_tree(long from, long to) {
  long depth = 0, src = from, dst = to;
  for (;;) {
    long n = must(sys3(NR_getdents64, src, copy_dents, sizeof copy_dents), "getdents64", "copy-up");
    if (n == 0) {
      if (depth == 0) return;
      /* This directory's copy is complete: its owner, mode and times, as copy_attributes sets them. */
      struct copy_level *l = &copy_levels[depth];
      must(sys6(NR_fchownat, dst, (long)"", l->uid, l->gid, AT_EMPTY_PATH, 0), "fchownat", "copy-up");
      must(sys3(NR_fchmod, dst, l->mode & 07777, 0), "fchmod", "copy-up");
      struct timespec_k times[2] = {{(long)l->atime.sec, l->atime.nsec}, {(long)l->mtime.sec, l->mtime.nsec}};
      must(sys6(NR_utimensat, dst, 0, (long)times, 0, 0, 0), "utimensat", "copy-up");
      long up_src = depth == 1 ? from : parent_of(src, &copy_levels[depth - 1].from);
      long up_dst = depth == 1 ? to : parent_of(dst, &copy_levels[depth - 1].to);
      sys3(NR_close, src, 0, 0);
      sys3(NR_close, dst, 0, 0);
      src = up_src, dst = up_dst, depth--;
      must(sys3(NR_lseek, src, l->resume, SEEK_SET), "lseek", "copy-up");
      continue;
    }
    for (long off = 0; off < n;) {
      const struct dirent64_k *d = (const struct dirent64_k *)(copy_dents + off);
      off += d->reclen;
      const char *name = d->name;
      if (eq(name, ".") || eq(name, "..")) continue;
      struct statx_full st;
      must(sys6(NR_statx, src, (long)name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, (long)&st, 0), "statx", name);
      long type = st.mode & S_IFMT;
      if (type == S_IFDIR) {
        must(sys3(NR_mkdirat, dst, name, st.mode & 07777), "mkdir", name);
        long a = must(sys6(NR_openat, src, (long)name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", name);
        long b = must(sys6(NR_openat, dst, (long)name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", name);
        if (++depth >= copy_cap) {
          long cap = copy_cap ? 2 * copy_cap : 64;
          struct copy_level *bigger = (struct copy_level *)alloc(sizeof *bigger * (unsigned long)cap);
          for (long i = 0; i < copy_cap; i++) bigger[i] = copy_levels[i];
          copy_levels = bigger, copy_cap = cap;
        }
        struct copy_level *l = &copy_levels[depth];
        l->resume = d->off;
        l->from = id_of(a, name), l->to = id_of(b, name);
        l->uid = st.uid, l->gid = st.gid, l->mode = st.mode, l->atime = st.atime, l->mtime = st.mtime;
        if (depth > 1) sys3(NR_close, src, 0, 0), sys3(NR_close, dst, 0, 0);
        src = a, dst = b;
        break; /* into it; the rest of this listing is read again from l->resume */
      } else if (type == S_IFLNK) {
        long len_ = must(sys6(NR_readlinkat, src, (long)name, (long)copy_link, sizeof copy_link - 1, 0, 0), "readlink", name);
        copy_link[len_] = 0;
        must(sys3(NR_symlinkat, copy_link, dst, name), "symlink", name);
      } else if (type == S_IFREG) {
        long a = must(sys6(NR_openat, src, (long)name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", name);
        long b = must(sys6(NR_openat, dst, (long)name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, 0, 0), "open", name);
        for (;;) {
          long got = must(retry(NR_read, a, (long)copy_buf, sizeof copy_buf), "read", name);
          if (got == 0) break;
          for (long done = 0; done < got;) done += must(retry(NR_write, b, (long)(copy_buf + done), got - done), "write", name);
        }
        sys3(NR_close, a, 0, 0);
        sys3(NR_close, b, 0, 0);
      } else {
        continue; /* devices, FIFOs and sockets are not copied, as Docker does not */
      }
      copy_attributes(dst, name, &st, type == S_IFLNK);
    }
  }
}

#if defined(__x86_64__)
enum { NR_flock = 73 };
#else
enum { NR_flock = 32 };
#endif
enum { LOCK_EX = 2, AT_REMOVEDIR = 0x200, RENAME_NOREPLACE = 1, EISDIR = 21, ENOTEMPTY = 39 };

/* The names of copy-up's protocol on a volume's top (COPY_UP_STAGING and COPY_UP_COMPLETE in copy-up.ts). */
static const char COPY_UP_STAGING[] = ".berth-copy-up.staging";
static const char COPY_UP_COMPLETE[] = ".berth-copy-up.complete";

/*
 * Removes `name` in the directory `dir` and everything under it (removeTree in copy-up.ts): no
 * recursion and a fixed number of fds at any depth. It goes down into the first directory that
 * is not empty, removes what it can, and comes back up through ".." to list the parent again
 * from its start. Names are taken relative to an fd of their directory; nothing is followed.
 */
static void remove_tree(long dir, const char *name) {
  long r = sys6(NR_unlinkat, dir, (long)name, 0, 0, 0, 0);
  if (r == 0 || r == -ENOENT) return;
  if (r != -EISDIR) must(r, "unlink", name);
  /* Walks until the top can be removed: a listing that entries leave as it goes is not relied on to show every one. */
  while ((r = sys6(NR_unlinkat, dir, (long)name, AT_REMOVEDIR, 0, 0, 0)) == -ENOTEMPTY) {
    long cur = must(sys6(NR_openat, dir, (long)name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", name), depth = 0;
    for (;;) {
      long n = must(sys3(NR_getdents64, cur, copy_dents, sizeof copy_dents), "getdents64", name), below = -1;
      if (n == 0) {
        if (depth == 0) break;
        /* Everything listed here is gone: list the parent again, where this directory is now empty. */
        long up = must(sys6(NR_openat, cur, (long)"..", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0), "open", "..");
        sys3(NR_close, cur, 0, 0);
        cur = up, depth--;
        continue;
      }
      for (long off = 0; off < n && below < 0;) {
        const struct dirent64_k *d = (const struct dirent64_k *)(copy_dents + off);
        off += d->reclen;
        if (eq(d->name, ".") || eq(d->name, "..")) continue;
        r = sys6(NR_unlinkat, cur, (long)d->name, 0, 0, 0, 0);
        if (r == 0 || r == -ENOENT) continue;
        if (r != -EISDIR) must(r, "unlink", d->name);
        r = sys6(NR_unlinkat, cur, (long)d->name, AT_REMOVEDIR, 0, 0, 0);
        if (r == 0) continue;
        if (r != -ENOTEMPTY) must(r, "rmdir", d->name);
        below = must(sys6(NR_openat, cur, (long)d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", d->name);
      }
      if (below >= 0) sys3(NR_close, cur, 0, 0), cur = below, depth++;
    }
    sys3(NR_close, cur, 0, 0);
  }
  if (r != 0 && r != -ENOENT) must(r, "rmdir", name);
}

/*
 * Step 5 of the protocol: moves each entry of COPY_UP_COMPLETE into the volume's top `top`
 * (RENAME_NOREPLACE: an entry something else put there is kept, the copy's dropped), gives the
 * top the copy's owner and mode, and removes COPY_UP_COMPLETE last.
 */
static void move_in(long top) {
  long done = must(sys6(NR_openat, top, (long)COPY_UP_COMPLETE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", COPY_UP_COMPLETE);
  /* Passes until one moves nothing: a listing that entries leave as it goes is not relied on to show every one. */
  for (long moved = 1; moved;) {
    moved = 0;
    must(sys3(NR_lseek, done, 0, SEEK_SET), "lseek", COPY_UP_COMPLETE);
    for (long n; (n = must(sys3(NR_getdents64, done, copy_dents, sizeof copy_dents), "getdents64", COPY_UP_COMPLETE)) > 0;) {
      for (long off = 0; off < n;) {
        const struct dirent64_k *d = (const struct dirent64_k *)(copy_dents + off);
        off += d->reclen;
        const char *name = d->name;
        if (eq(name, ".") || eq(name, "..") || eq(name, COPY_UP_STAGING) || eq(name, COPY_UP_COMPLETE)) continue;
        long r = sys6(NR_renameat2, done, (long)name, top, (long)name, RENAME_NOREPLACE, 0);
        if (r == -EINVAL) {
          /* A file system without RENAME_NOREPLACE: with the lock held, a check first is as good. */
          struct statx_full st;
          r = sys6(NR_statx, top, (long)name, AT_SYMLINK_NOFOLLOW, STATX_TYPE, (long)&st, 0);
          r = r == -ENOENT ? sys6(NR_renameat2, done, (long)name, top, (long)name, 0, 0) : -EEXIST;
        }
        if (r == -EEXIST) continue; /* the volume's own entry wins */
        must(r, "rename", name);
        moved++;
      }
    }
  }
  struct statx_full st;
  must(sys6(NR_statx, done, (long)"", AT_EMPTY_PATH, STATX_BASIC_STATS, (long)&st, 0), "statx", COPY_UP_COMPLETE);
  must(sys6(NR_fchownat, top, (long)"", st.uid, st.gid, AT_EMPTY_PATH, 0), "fchownat", "copy-up");
  must(sys3(NR_fchmod, top, st.mode & 07777, 0), "fchmod", "copy-up");
  sys3(NR_close, done, 0, 0);
  remove_tree(top, COPY_UP_COMPLETE);
}

/*
 * Docker's volume copy-up, crash-safe and race-free by the protocol described in copy-up.ts:
 * under flock(LOCK_EX) on the volume's top `top` (held by this process, so released only when
 * it closes the fd or dies), a dead copier's COPY_UP_STAGING is removed and its COPY_UP_COMPLETE
 * moved in; otherwise, if the volume is empty, the image's directory `from` is copied into
 * COPY_UP_STAGING, which takes `from`'s owner and mode and is renamed to COPY_UP_COMPLETE (the
 * copy counts from here), then moved in. A volume holding anything else was filled already.
 */
static void copy_up(long from, long top) {
  must(retry(NR_flock, top, LOCK_EX, 0), "flock", "copy-up");
  remove_tree(top, COPY_UP_STAGING);
  struct statx_full st;
  long r = sys6(NR_statx, top, (long)COPY_UP_COMPLETE, AT_SYMLINK_NOFOLLOW, STATX_TYPE, (long)&st, 0);
  if (r == -ENOENT) {
    long n;
    for (;;) {
      n = must(sys3(NR_getdents64, top, copy_dents, sizeof copy_dents), "getdents64", "copy-up");
      int other = 0;
      for (long off = 0; off < n && !other;) {
        const struct dirent64_k *d = (const struct dirent64_k *)(copy_dents + off);
        off += d->reclen;
        other = !eq(d->name, ".") && !eq(d->name, "..");
      }
      if (other) return; /* filled already */
      if (n == 0) break;
    }
    must(sys3(NR_mkdirat, top, COPY_UP_STAGING, 0700), "mkdir", COPY_UP_STAGING);
    long stage = must(sys6(NR_openat, top, (long)COPY_UP_STAGING, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", COPY_UP_STAGING);
    copy_tree(from, stage);
    must(sys6(NR_statx, from, (long)"", AT_EMPTY_PATH, STATX_BASIC_STATS, (long)&st, 0), "statx", "copy-up");
    must(sys6(NR_fchownat, stage, (long)"", st.uid, st.gid, AT_EMPTY_PATH, 0), "fchownat", COPY_UP_STAGING);
    must(sys3(NR_fchmod, stage, st.mode & 07777, 0), "fchmod", COPY_UP_STAGING);
    sys3(NR_close, stage, 0, 0);
    must(sys6(NR_renameat2, top, (long)COPY_UP_STAGING, top, (long)COPY_UP_COMPLETE, 0, 0), "rename", COPY_UP_STAGING);
  } else {
    must(r, "statx", COPY_UP_COMPLETE);
  }
  move_in(top);
}

/* mkdir -p each target, then mount(2) (the plan's mounts, and the cgroup view's). */
static void make_mounts(const struct plan_mount *list, int n) {
  for (int i = 0; i < n; i++) {
    const struct plan_mount *m = &list[i];
    set_step("mount ", m->target);
    mkdir_all(m->target, 0755);
    do_mount(m->source, m->target, m->fstype, m->flags, m->data);
  }
}

/* Whether a /proc/sys path may name a network interface (net/ipv4/conf/eth0/…, net/ipv6/neigh/…). */
static int names_interface(const char *path) {
  for (const char *p = path; *p; p++)
    if (starts(p, "/conf/") || starts(p, "/neigh/")) return 1;
  return 0;
}

/*
 * The sysctls, through the container's /proc/sys before it is made read-only. One of a network
 * interface waits for the zygote's ack with cgroup v2 (v1 had it before the pivot): it is sent
 * once the interfaces exist.
 */
static void write_sysctls(void) {
  for (int i = 0; i < lim.n_sysctls; i++)
    if (!plan.n_tasks && names_interface(lim.sysctls[2 * i])) {
      set_step("cgroups", 0);
      await_cgroup_ack();
    }
  for (int i = 0; i < lim.n_sysctls; i++) {
    const char *path = lim.sysctls[2 * i], *value = lim.sysctls[2 * i + 1];
    set_step("sysctl ", path);
    long fd = must(sys6(NR_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC, 0, 0, 0), "open", path);
    must(sys3(NR_write, fd, value, len(value)), "write", path);
    sys3(NR_close, fd, 0, 0);
  }
}

/*
 * oom_score_adj and the resource limits, which the program and its children inherit; before the
 * user changes, as runc sets them (RLIMIT_NPROC counts at setuid), and oom_score_adj before a
 * RLIMIT_NOFILE of 0 could keep its file from opening. Then a new session keyring.
 */
/* oom_score_adj and resource limits, before a user namespace is joined: lowering the one and
 * raising the other want the host's CAP_SYS_RESOURCE. */
static void apply_limits(void) {
  if (lim.has_oom) {
    set_step("oom_score_adj", 0);
    must(set_oom_score_adj(lim.oom), "write", "/proc/self/oom_score_adj");
  }
  set_step("rlimits", 0);
  for (int i = 0; i < lim.n_rlimits; i++) must(set_rlimit(lim.rlimits[i].resource, lim.rlimits[i].soft, lim.rlimits[i].hard), "prlimit64", num_str(lim.rlimits[i].resource));
}

static void mask_path(const char *path) {
  if (!exists(path)) return;
  long mode = 0;
  if (stat_mode(path, &mode) == 0 && (mode & S_IFMT) == S_IFDIR) do_mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0");
  else do_mount("/dev/null", path, 0, MS_BIND, 0);
}

static void readonly_path(const char *path) {
  if (!exists(path)) return;
  do_mount(path, path, 0, MS_BIND | MS_REC, 0);
  do_mount(0, path, 0, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0);
}

/* Wires fds 0-2: the pipes (stdin or /dev/null), or a new terminal on the container's devpts. */
static void set_up_stdio(const struct user *u) {
  if (!plan.tty) {
    long in = STDIN_FD;
    if (sys3(NR_fcntl, STDIN_FD, F_GETFL, 0) < 0) in = must(sys6(NR_openat, AT_FDCWD, (long)"/dev/null", O_RDONLY | O_CLOEXEC, 0, 0, 0), "open", "/dev/null");
    place(in, 0);
    if (in != STDIN_FD) sys3(NR_close, in, 0, 0);
    place(STDOUT_FD, 1);
    place(STDERR_FD, 2);
  } else {
    long master = must(sys6(NR_openat, AT_FDCWD, (long)"/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0, 0, 0), "open", "/dev/pts/ptmx");
    int unlock = 0;
    unsigned index = 0;
    must(sys3(NR_ioctl, master, TIOCSPTLCK, &unlock), "ioctl", "TIOCSPTLCK");
    must(sys3(NR_ioctl, master, TIOCGPTN, &index), "ioctl", "TIOCGPTN");
    long slave = must(sys3(NR_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC), "ioctl", "TIOCGPTPEER");
    /* The program's own terminal, as a login would make it: owned by its user (group unchanged). */
    must(sys3(NR_fchown, slave, userns_host_id(userns.uid_map, u->uid), -1), "fchown", 0);
    unsigned short ws[4] = {(unsigned short)plan.rows, (unsigned short)plan.cols, 0, 0};
    must(sys3(NR_ioctl, slave, TIOCSWINSZ, ws), "ioctl", "TIOCSWINSZ");
    char pts[32];
    *put_num(put_str(pts, "/dev/pts/"), index) = 0;
    do_mount(pts, "/dev/console", 0, MS_BIND, 0);
    for (int fd = 0; fd < 3; fd++) place(slave, fd);
    sys3(NR_close, slave, 0, 0);
    /* This process leads its session (setsid at the start): the terminal becomes its controlling one. */
    must(sys3(NR_ioctl, 0, TIOCSCTTY, 0), "ioctl", "TIOCSCTTY");
    char line[32], *p = line;
    *p++ = 2;
    p = put_num(p, master);
    *p++ = '\n';
    sys3(NR_write, ERROR_FD, line, p - line);
    char ack;
    int got = read_exactly(CTRL_FD, &ack, 1);
    sys3(NR_close, CTRL_FD, 0, 0);
    sys3(NR_close, master, 0, 0);
    if (!got) fail_other("the runtime did not take the terminal", "", "");
  }
  for (int fd = STDIN_FD; fd <= STDERR_FD; fd++) sys3(NR_close, fd, 0, 0);
}

static void drop_privileges(const struct user *u) {
  u64 caps = plan.caps;
  for (int cap = 0; cap < 64; cap++) {
    if (caps & (1ull << cap)) continue;
    long r = sys3(NR_prctl, PR_CAPBSET_DROP, cap, 0);
    if (r != -EINVAL) must(r, "prctl", "PR_CAPBSET_DROP"); /* EINVAL: beyond the kernel's last capability */
  }
  must(sys6(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0), "prctl", "PR_CAP_AMBIENT");
  must(sys3(NR_setgroups, u->n_groups, u->groups, 0), "setgroups", 0);
  must(sys3(NR_setresgid, u->gid, u->gid, u->gid), "setresgid", 0);
  must(sys3(NR_setresuid, u->uid, u->uid, u->uid), "setresuid", 0);
  /* A non-zero uid lost every capability in setresuid; root keeps exactly the mask. */
  must(set_capabilities(u->uid == 0 ? caps : 0), "capset", 0);
  if (plan.nnp) must(sys6(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0), "prctl", "PR_SET_NO_NEW_PRIVS");
}

/*
 * The container's seccomp filter, in runc's order: without no_new_privs the kernel wants
 * CAP_SYS_ADMIN, so it goes in `before` the capabilities are dropped (the calls that drop them
 * must pass it); with no_new_privs, `after` everything but the exec.
 */
static void apply_seccomp(int before) {
  if (!plan.seccomp || before == plan.nnp) return;
  set_step("seccomp", 0);
  must(load_seccomp(plan.seccomp), "seccomp", "SECCOMP_SET_MODE_FILTER");
}

static void set_signal_mask(u64 mask) {
  sys6(NR_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0, 0);
}

/*
 * PID 1 with `init: true` (reap() in init.ts): forwards every signal it gets to the program,
 * reaps every child, exits with the program's status (128 + n for a signal). Signals are
 * blocked (since before the fork) and taken with sigtimedwait.
 */
static __attribute__((noreturn)) void reap(long main_pid) {
  /* The program reports its own exec; holding the pipe here would hide that it closed. */
  sys3(NR_close, ERROR_FD, 0, 0);
  u64 all = ~0ull;
  for (;;) {
    long sig = sys6(NR_rt_sigtimedwait, (long)&all, 0, 0, 8, 0, 0);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      sys3(NR_kill, main_pid, sig, 0);
      continue;
    }
    for (;;) {
      int status = 0;
      long pid = sys6(NR_wait4, -1, (long)&status, WNOHANG, 0, 0, 0);
      if (pid < 0) exit_now(0);
      if (pid == 0) break;
      if (pid == main_pid) exit_now((status & 0x7f) ? 128 + (status & 0x7f) : (status >> 8) & 0xff);
    }
  }
}

static __attribute__((noreturn)) void command_failure(int code, const char *a, const char *b, const char *c, const char *d) {
  unsigned long n = len(a) + len(b) + len(c) + len(d) + 1;
  fail("command", cat((char *)alloc(n), n, a, b, c, d), 0, 0, code);
}

static char candidate[4096 + 256];

/* execve with execvp(3)'s PATH search in the container's PATH (execProgram in init.ts). */
static __attribute__((noreturn)) void exec_program(char **args, char **env) {
  const char *file = args[0];
  if (!file) command_failure(127, "no command specified", "", "", "");
  int denied, slash = 0;
  for (const char *s = file; *s; s++) slash |= *s == '/';
  const char *path = find_program(file, env, candidate, sizeof candidate, &denied);
  if (!path && denied) command_failure(126, "exec: \"", file, "\": permission denied", "");
  if (!path && slash) command_failure(127, "exec: \"", file, cat(detail, sizeof detail, "\": stat ", file, ": no such file or directory", 0), "");
  if (!path) command_failure(127, "exec: \"", file, "\": executable file not found in $PATH", "");
  sys3(NR_write, ERROR_FD, "\1", 1);
  long r = sys3(NR_execve, path, args, env);
  if (r == -ENOEXEC) command_failure(126, "exec: \"", file, "\": exec format error", "");
  if (r == -EACCES) command_failure(126, "exec: \"", file, "\": permission denied", "");
  if (r == -ENOENT || r == -ENOTDIR) command_failure(127, "exec: \"", file, cat(detail, sizeof detail, "\": stat ", file, ": no such file or directory", 0), "");
  fail("command", cat(msg, sizeof msg, "exec: \"", file, "\": execve failed", 0), "execve", -r, 126);
}

/* ---- user namespace ------------------------------------------------------------------------ */

/*
 * With a `userns` record the program runs in a user namespace whose root is an unprivileged host
 * range. The other namespaces and every mount are still made here by host root (they stay owned
 * by the host's user namespace); the file system shows the container's ids through idmapped
 * mounts. In order:
 *   userns_make     a child cloned into a new user namespace reports its host pid and waits; this
 *                   process (host root) writes its uid_map and gid_map, keeps an fd on the
 *                   namespace and kills it (~0.1 ms);
 *   userns_fs_ids   file system ids: the host ids of the container's root, so that what the init
 *                   creates (through idmapped mounts, which refuse an unmapped id with EOVERFLOW,
 *                   and on tmpfs) is the container root's; the capabilities setfsuid cleared from
 *                   the effective set are raised again;
 *   userns_rootfs   the overlay over idmapped clones of each lower dir and of the dir holding the
 *                   upper and work dirs: the writable layer keeps the ids the container sees;
 *   userns_idmap    the engine's binds and volumes idmapped the same way (host binds are not);
 *   userns_enter    last, before the privileges are dropped: setns into it, root there.
 */
#if defined(__x86_64__)
enum { NR_pipe2 = 293, NR_setfsuid = 122, NR_setfsgid = 123, NR_capget = 125 };
#else
enum { NR_pipe2 = 59, NR_setfsuid = 151, NR_setfsgid = 152, NR_capget = 90 };
#endif
enum { MOUNT_ATTR_IDMAP = 0x00100000, F_DUPFD_CLOEXEC = 1030 };

static void write_file(const char *path, const char *text) {
  long fd = must(sys6(NR_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC, 0, 0, 0), "open", path);
  must(sys3(NR_write, fd, text, len(text)), "write", path);
  sys3(NR_close, fd, 0, 0);
}

static void userns_make(void) {
  set_step("user namespace", 0);
  int p[2];
  must(sys3(NR_pipe2, p, O_CLOEXEC, 0), "pipe2", 0);
  long child = must(sys6(NR_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0), "clone", "CLONE_NEWUSER");
  if (child == 0) {
    /* Its pid as the host sees it: /proc is still the host's here. */
    char pid[24];
    long n = sys6(NR_readlinkat, AT_FDCWD, (long)"/proc/self", (long)pid, sizeof pid, 0, 0);
    sys3(NR_write, p[1], pid, n > 0 ? n : 0);
    for (;;) sys6(NR_ppoll, 0, 0, 0, 0, 8, 0);
  }
  sys3(NR_close, p[1], 0, 0);
  char pid[24];
  long n = retry(NR_read, p[0], (long)pid, sizeof pid - 1);
  sys3(NR_close, p[0], 0, 0);
  if (n <= 0) fail_other("the user namespace's holder died", "", "");
  pid[n] = 0;
  char path[64];
  write_file(cat(path, sizeof path, "/proc/", pid, "/uid_map", 0), userns.uid_map);
  write_file(cat(path, sizeof path, "/proc/", pid, "/gid_map", 0), userns.gid_map);
  long fd = must(sys6(NR_openat, AT_FDCWD, (long)cat(path, sizeof path, "/proc/", pid, "/ns/user", 0), O_RDONLY | O_CLOEXEC, 0, 0, 0), "open", path);
  /* Above the fds the stdio step closes (5-7), which may be free now. */
  userns.fd = must(sys3(NR_fcntl, fd, F_DUPFD_CLOEXEC, 64), "fcntl", "F_DUPFD_CLOEXEC");
  sys3(NR_close, fd, 0, 0);
  sys3(NR_kill, child, SIGKILL, 0);
  int status;
  sys6(NR_wait4, child, (long)&status, 0, 0, 0, 0);
}

static void userns_fs_ids(void) {
  set_step("user namespace", 0);
  sys3(NR_setfsgid, userns.root_gid, 0, 0);
  sys3(NR_setfsuid, userns.root_uid, 0, 0);
  if (sys3(NR_setfsuid, -1, 0, 0) != userns.root_uid || sys3(NR_setfsgid, -1, 0, 0) != userns.root_gid) fail_other("setfsuid/setfsgid did not take", "", "");
  unsigned header[2] = {_LINUX_CAPABILITY_VERSION_3, 0}, data[6];
  must(sys3(NR_capget, header, data, 0), "capget", 0);
  data[0] = data[1], data[3] = data[4]; /* effective = permitted */
  must(sys3(NR_capset, header, data, 0), "capset", 0);
  /* A change of credentials clears the parent-death signal. */
  must(sys3(NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0), "prctl", "PR_SET_PDEATHSIG");
}

static void userns_idmap(long fd, const char *what, int recursive) {
  u64 attr[4] = {MOUNT_ATTR_IDMAP, 0, 0, (u64)userns.fd};
  must(sys6(NR_mount_setattr, fd, (long)"", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), (long)attr, sizeof attr, 0), "mount_setattr", cat(detail, sizeof detail, "MOUNT_ATTR_IDMAP ", what, 0, 0));
}

/* An idmapped clone of `dir`, as "/proc/self/fd/N" (overlayfs takes a detached mount by that path). */
static const char *userns_clone(const char *dir, long *fds, int *n_fds) {
  long fd = must(sys3(NR_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | O_CLOEXEC), "open_tree", dir);
  userns_idmap(fd, dir, 0);
  fds[(*n_fds)++] = fd;
  return cat((char *)alloc(32), 32, "/proc/self/fd/", num_str(fd), 0, 0);
}

static void userns_rootfs(void) {
  long *fds = (long *)alloc(sizeof(long) * (unsigned long)(userns.n_lowers + 1));
  int n_fds = 0;
  unsigned long size = 64 + 32 * (unsigned long)userns.n_lowers + 2 * len(userns.upper) + 2 * len(userns.work) + 64;
  char *data = (char *)alloc(size), *p = put_str(data, "lowerdir=");
  for (int i = 0; i < userns.n_lowers; i++) p = put_str(i ? put_str(p, ":") : p, userns_clone(userns.lowers[i], fds, &n_fds));
  const char *up = userns_clone(userns.upper_dir, fds, &n_fds);
  p = put_str(put_str(put_str(put_str(p, ",upperdir="), up), "/"), userns.upper);
  *put_str(put_str(put_str(put_str(p, ",workdir="), up), "/"), userns.work) = 0;
  do_mount("overlay", plan.mount_point, "overlay", 0, data);
  for (int i = 0; i < n_fds; i++) sys3(NR_close, fds[i], 0, 0);
}

static void userns_enter(void) {
  set_step("user namespace", 0);
  must(sys3(NR_setns, userns.fd, CLONE_NEWUSER, 0), "setns", "user");
  sys3(NR_close, userns.fd, 0, 0);
  must(sys3(NR_setresgid, 0, 0, 0), "setresgid", 0);
  must(sys3(NR_setresuid, 0, 0, 0), "setresuid", 0);
  must(sys3(NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0), "prctl", "PR_SET_PDEATHSIG");
}

#ifdef __cplusplus
extern "C"
#endif
__attribute__((noreturn, used)) void init_main(long *sp) {
  (void)sp;
  must(become_private("berth-init"), "prctl", "PR_SET_DUMPABLE");
  sys3(NR_fcntl, ERROR_FD, F_SETFD, FD_CLOEXEC);
  sys3(NR_fcntl, CTRL_FD, F_SETFD, FD_CLOEXEC);
  /* Nothing of the zygote's but our own pipes: another container's pipe end held here would keep
   * that container's output open. */
  sys3(NR_close_range, STDERR_FD + 1, ~0u, 0);
  open_std_fds(); /* on /dev/null until stdio is set up */

  must(sys3(NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0), "prctl", "PR_SET_PDEATHSIG");
  sys3(NR_setsid, 0, 0, 0);
  reset_signals();

  set_step("read plan", 0);
  read_plan();

  set_step("prepare", 0);
  /* The PID namespace was made by the zygote; the cgroup namespace once the cgroups are joined. */
  must(sys3(NR_unshare, plan.flags & ~(CLONE_NEWCGROUP | CLONE_NEWPID), 0, 0), "unshare", num_str(plan.flags));
  do_mount(0, "/", 0, MS_REC | MS_PRIVATE, 0);
  if (plan.flags & CLONE_NEWNET) loopback_up();

  if (plan.netns_pid) {
    set_step("join network", 0);
    const char *path = cat((char *)alloc(64), 64, "/proc/", num_str(plan.netns_pid), "/ns/net", 0);
    long fd = must(sys6(NR_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0), "open", path);
    must(sys3(NR_setns, fd, CLONE_NEWNET, 0), "setns", path);
    sys3(NR_close, fd, 0, 0);
  }

  if (userns.uid_map) {
    userns_make();
    userns_fs_ids();
  }

  set_step("rootfs", 0);
  if (userns.uid_map) userns_rootfs();
  else do_mount("overlay", plan.mount_point, "overlay", 0, plan.root_data);
  set_step("bind sources", 0);
  for (int i = 0; i < plan.n_binds; i++) {
    struct bind *b = &plan.binds[i];
    b->fd = must(sys3(NR_open_tree, AT_FDCWD, b->source, OPEN_TREE_CLONE | O_CLOEXEC), "open_tree", b->source);
    if (userns.uid_map) userns_idmap(b->fd, b->source, 0);
    b->dir = is_dir(b->source);
  }
  set_step("mount sources", 0);
  for (int i = 0; i < plan.n_umounts; i++) {
    struct user_mount *m = &plan.umounts[i];
    if (m->tmpfs) continue;
    m->fd = must(sys3(NR_open_tree, AT_FDCWD, m->source, OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE), "open_tree", m->source);
    if (m->idmap) userns_idmap(m->fd, m->source, 1);
    /* A volume to fill is made read-only once filled (copy_up below). */
    if (m->ro && !m->copy) {
      u64 attr[4] = {MOUNT_ATTR_RDONLY, 0, 0, 0};
      must(sys6(NR_mount_setattr, m->fd, (long)"", AT_EMPTY_PATH | AT_RECURSIVE, (long)attr, sizeof attr, 0), "mount_setattr", m->source);
    }
  }
  if (plan.n_tasks) {
    /* v1: this single-threaded process moves itself through `tasks`, before the host's cgroup
     * files go out of reach (the pivot). */
    set_step("cgroups", 0);
    await_cgroup_ack();
    for (int i = 0; i < plan.n_tasks; i++) {
      long fd = must(sys6(NR_openat, AT_FDCWD, (long)plan.tasks[i], O_WRONLY | O_CLOEXEC, 0, 0, 0), "open", plan.tasks[i]);
      must(sys3(NR_write, fd, "0", 1), "write", plan.tasks[i]);
      sys3(NR_close, fd, 0, 0);
    }
  }

  /* From here every path resolves inside the container. */
  set_step("pivot_root", 0);
  must(sys3(NR_chdir, plan.mount_point, 0, 0), "chdir", plan.mount_point);
  must(sys3(NR_pivot_root, ".", ".", 0), "pivot_root", "., .");
  must(sys3(NR_umount2, ".", MNT_DETACH, 0), "umount2", ".");
  must(sys3(NR_chdir, "/", 0, 0), "chdir", "/");
  sys3(NR_umask, 0, 0, 0);
  make_mounts(plan.mounts, plan.n_mounts);
  set_step("devices", 0);
  for (int i = 0; i < plan.n_devices; i++) {
    struct device *d = &plan.devices[i];
    long dev = (d->minor & 0xff) | (d->major & 0xfff) << 8 | (d->minor & ~0xffl) << 12;
    must(sys6(NR_mknodat, AT_FDCWD, (long)d->path, S_IFCHR | d->mode, dev, 0, 0), "mknod", d->path);
  }
  for (int i = 0; i < plan.n_links; i++) {
    const char *target = plan.links[2 * i], *path = plan.links[2 * i + 1];
    must(sys3(NR_symlinkat, target, AT_FDCWD, path), "symlink", cat(detail, sizeof detail, path, " -> ", target, 0));
  }
  for (int i = 0; i < plan.n_binds; i++) {
    struct bind *b = &plan.binds[i];
    set_step("bind ", b->target);
    ensure_mount_target(b->target, b->dir);
    attach(b->fd, b->target);
    if (b->ro) do_mount(0, b->target, 0, MS_BIND | MS_REMOUNT | MS_RDONLY, 0);
  }
  for (int i = 0; i < plan.n_umounts; i++) {
    struct user_mount *m = &plan.umounts[i];
    set_step("mount ", m->target);
    if (m->tmpfs) {
      mkdir_all(m->target, 0755);
      do_mount("tmpfs", m->target, "tmpfs", MS_NOSUID | MS_NODEV | (m->ro ? MS_RDONLY : 0), m->data);
      continue;
    }
    ensure_mount_target(m->target, m->dir);
    /* The image's content under the target, kept reachable through an fd once the volume covers it. */
    long below = m->copy ? must(sys6(NR_openat, AT_FDCWD, (long)m->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0), "open", m->target) : -1;
    attach(m->fd, m->target);
    if (below >= 0) {
      long to = must(sys6(NR_openat, AT_FDCWD, (long)m->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0), "open", m->target);
      /* The volume's own directory gets the owner and mode of the image's, as Docker's copy-up (copyUp). */
      copy_up(below, to);
      if (m->ro) {
        u64 attr[4] = {MOUNT_ATTR_RDONLY, 0, 0, 0};
        must(sys6(NR_mount_setattr, to, (long)"", AT_EMPTY_PATH | AT_RECURSIVE, (long)attr, sizeof attr, 0), "mount_setattr", m->target);
      }
      sys3(NR_close, to, 0, 0); /* releases the lock */
      sys3(NR_close, below, 0, 0);
    }
    if (m->prop) do_mount(0, m->target, 0, m->prop, 0);
  }
  write_sysctls();
  set_step("masked paths", 0);
  for (int i = 0; i < plan.n_masks; i++) mask_path(plan.masks[i]);
  for (int i = 0; i < plan.n_ropaths; i++) readonly_path(plan.ropaths[i]);
  sys3(NR_umask, 022, 0, 0);

  set_step("cgroups", 0);
  /* v2: the zygote moved this process into its cgroups while the mounts above were made. */
  if (!plan.n_tasks) await_cgroup_ack();
  if (plan.flags & CLONE_NEWCGROUP) must(sys3(NR_unshare, CLONE_NEWCGROUP, 0, 0), "unshare", "CLONE_NEWCGROUP");
  make_mounts(lim.cgmounts, lim.n_cgmounts);

  set_step("hostname", 0);
  must(sys3(NR_sethostname, plan.host, len(plan.host), 0), "sethostname", plan.host);
  if (plan.domain && *plan.domain) must(sys3(NR_setdomainname, plan.domain, len(plan.domain), 0), "setdomainname", plan.domain);

  set_step("user", 0);
  struct user user;
  resolve_user(plan.user, &user);
  int has_home = 0;
  for (int i = 0; i < plan.n_env; i++) has_home |= starts(plan.env[i], "HOME=");
  if (!has_home) plan.env[plan.n_env++] = cat((char *)alloc(len(user.home) + 6), len(user.home) + 6, "HOME=", user.home, 0, 0), plan.env[plan.n_env] = 0;

  set_step("stdio", 0);
  set_up_stdio(&user);

  set_step("workdir", 0);
  if (!exists(plan.cwd)) mkdir_all(plan.cwd, 0755);
  if (plan.rootro) {
    set_step("read-only root", 0);
    do_mount(0, "/", 0, MS_BIND | MS_REMOUNT | MS_RDONLY, 0);
  }
  apply_limits();
  if (userns.uid_map) userns_enter();
  set_step("keyring", 0);
  must(join_new_session_keyring(), "keyctl", "KEYCTL_JOIN_SESSION_KEYRING");
  apply_seccomp(1);
  set_step("capabilities", 0);
  drop_privileges(&user);
  set_step("workdir", 0);
  must(sys3(NR_chdir, plan.cwd, 0, 0), "chdir", plan.cwd);
  apply_seccomp(0);

  set_step("exec", 0);
  sys3(NR_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC);
  if (plan.init) {
    set_step("init", 0);
    set_signal_mask(~0ull);
    long pid = must(sys6(NR_clone, SIGCHLD, 0, 0, 0, 0, 0), "fork", 0);
    if (pid > 0) reap(pid);
    if (plan.tty) {
      /* The program is the terminal's foreground job, as tini makes it: Ctrl-C reaches it once,
       * not also the reaper (which would forward it a second time). SIGTTOU is still blocked. */
      must(sys3(NR_setpgid, 0, 0, 0), "setpgid", 0);
      int self = (int)sys3(NR_getpid, 0, 0, 0);
      must(sys3(NR_ioctl, 0, TIOCSPGRP, &self), "ioctl", "TIOCSPGRP");
    }
    set_signal_mask(0);
    set_step("exec", 0);
  }
  exec_program(plan.args, plan.env);
}

BERTH_START(init_main)
