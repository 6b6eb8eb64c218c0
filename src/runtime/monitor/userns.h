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
#ifndef BERTH_USERNS_H
#define BERTH_USERNS_H
#include "plan.h"
#include "fs.h"

enum { MOUNT_ATTR_IDMAP = 0x00100000, F_DUPFD_CLOEXEC = 1030 };

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

#endif
