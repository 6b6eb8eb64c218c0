/*
 * berth-init's file system helpers: paths, directories, files and mounts, as kernel/fs.ts and
 * init.ts's mount steps (mount targets, masked and read-only paths). Failures name the step under
 * way (failure.h).
 */
#ifndef BERTH_FS_H
#define BERTH_FS_H
#include "arena.h"

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

/* Writes `text` to the existing file `path` (a cgroup's tasks, a sysctl, an id map). */
static void write_file(const char *path, const char *text) {
  long fd = must(sys6(NR_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC, 0, 0, 0), "open", path);
  must(sys3(NR_write, fd, text, len(text)), "write", path);
  sys3(NR_close, fd, 0, 0);
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

/* Hides `path` (maskedPaths): an empty read-only tmpfs on a directory, /dev/null on anything else. */
static void mask_path(const char *path) {
  if (!exists(path)) return;
  long mode = 0;
  if (stat_mode(path, &mode) == 0 && (mode & S_IFMT) == S_IFDIR) do_mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0");
  else do_mount("/dev/null", path, 0, MS_BIND, 0);
}

/* Makes `path` read-only (readonlyPaths): a read-only bind of itself, without suid, devices or exec. */
static void readonly_path(const char *path) {
  if (!exists(path)) return;
  do_mount(path, path, 0, MS_BIND | MS_REC, 0);
  do_mount(0, path, 0, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0);
}

#endif
