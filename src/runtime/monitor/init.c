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
 * The plan (written by `encodeInitPlan` in src/runtime/native-init.ts) comes first on the control
 * pipe: see plan.h.
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
 * forks first, under the filter too). With a user namespace (`userns`, see userns.h)
 * the init makes it after "prepare", idmaps the root, binds and volumes, and joins it after the
 * limits (which need the host's capabilities) and before the keyring (which it then owns).
 * A failure is written as JSON on the error pipe (failure.h) and the process exits with its code.
 *
 * The steps live by idea in headers, this file being the one translation unit that includes
 * them: plan.h (the plan), userdb.h (the user), fs.h (files and mounts), copyup.h (volume
 * copy-up), userns.h (the user namespace), and, shared with berth-exec, failure.h, term.h
 * (stdio and the terminal), privileges.h and program.h (the exec).
 */
#include "plan.h"
#include "userdb.h"
#include "fs.h"
#include "copyup.h"
#include "userns.h"
#include "term.h"
#include "privileges.h"
#include "program.h"

enum { TIOCGPTN = (int)0x80045430, TIOCSPGRP = 0x5410, MOUNT_ATTR_RDONLY = 1 };

/* ---- the steps ----------------------------------------------------------------------------- */

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
    write_file(path, value);
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

/* Wires fds 0-2: the pipes (stdin or /dev/null), or a new terminal on the container's devpts. */
static void set_up_stdio(const struct user *u) {
  if (!plan.tty) {
    wire_pipes();
  } else {
    /* The program's own terminal, as a login would make it: owned by its user (group unchanged). */
    long slave, master = open_terminal(userns_host_id(userns.uid_map, u->uid), plan.rows, plan.cols, &slave);
    unsigned index = 0;
    must(sys3(NR_ioctl, master, TIOCGPTN, &index), "ioctl", "TIOCGPTN");
    char pts[32];
    *put_num(put_str(pts, "/dev/pts/"), index) = 0;
    do_mount(pts, "/dev/console", 0, MS_BIND, 0);
    hand_over_terminal(master, slave);
    sys3(NR_close, CTRL_FD, 0, 0);
  }
  for (int fd = STDIN_FD; fd <= STDERR_FD; fd++) sys3(NR_close, fd, 0, 0);
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

/* execve with execvp(3)'s PATH search in the container's PATH (execProgram in init.ts). */
static __attribute__((noreturn)) void run_program(char **args, char **env) {
  const char *file = args[0];
  if (!file) command_failure(127, "no command specified", "", "", "", "");
  long r = exec_program(args, env);
  if (r == -ENOENT || r == -ENOTDIR) command_failure(127, "exec: \"", file, "\": stat ", file, ": no such file or directory");
  fail("command", cat(msg, sizeof msg, "exec: \"", file, "\": execve failed", 0), "execve", -r, 126);
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
    for (int i = 0; i < plan.n_tasks; i++) write_file(plan.tasks[i], "0");
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
  drop_privileges(plan.caps, user.groups, user.n_groups, user.uid, user.gid, plan.nnp);
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
  run_program(plan.args, plan.env);
}

BERTH_START(init_main)

