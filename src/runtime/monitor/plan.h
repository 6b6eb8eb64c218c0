/*
 * berth-init's plan, read from the control pipe (written by `encodeInitPlan` in
 * src/runtime/native-init.ts): a little-endian u32 length and that many bytes: the magic field
 * "berth-init-plan-1", then records, each a key and a fixed number of fields, every one a
 * NUL-terminated string. Numbers are decimal, except the capability mask (hex). An empty string
 * stands for a null mount source or data. See KEYS below.
 */
#ifndef BERTH_PLAN_H
#define BERTH_PLAN_H
#include "arena.h"

enum { MAX_PLAN = 1 << 20 };

/* A mount source or data: 0 for the empty string. */
static const char *opt(const char *s) {
  return s && *s ? s : 0;
}

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

/* ---- user namespace: the plan's part (the steps are in userns.h) ------------------------------ */

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

#endif
