/*
 * berth-exec: enters a running container and execs a program in it (`docker exec`), as the
 * JavaScript `runExec` in src/runtime/init.ts does, but without a copy of the zygote's
 * address space: the zygote starts it with posix_spawn (vfork + exec of these few KiB) after
 * entering the container's PID namespace for its children, so this process is already in it.
 *
 *   berth-exec [--cgroup PATH]... [--ns TYPE]... --uid U --gid G [--groups G,G,...] --caps MASK
 *              [--nnp] [--seccomp HEX] --cwd DIR [--tty COLS:ROWS] [--oom ADJ]
 *              [--rlimit RES:SOFT:HARD]... -- PROGRAM ARGS...
 *
 * The environment it gets is the program's. File descriptors at start:
 *   3  the error pipe (close-on-exec here): a failure report, or the exec marker
 *   4  the control pipe (read end), with --tty: one byte once the terminal's master is taken
 *   5  stdin, or not open (then /dev/null inside the container)
 *   6  stdout, 7 stderr (unused with --tty)
 *   8… one fd per --ns, joined in order (the mount namespace last; a user namespace after it)
 *
 * Steps: PDEATHSIG, new session, default signal dispositions, write 0 to each cgroup file
 * (host paths: before the mount namespace), the container's oom_score_adj and resource limits
 * (-1: unlimited), setns each namespace (a user namespace last), stdio (with --tty a new
 * terminal on the container's /dev/pts/ptmx: "\x02<master fd>\n" on the error pipe, then
 * wait for the ack), a new session keyring, drop the bounding set to MASK, clear ambient
 * capabilities, groups, gid, uid, capset MASK for root (none for another uid; no inheritable set
 * for any), no_new_privs, chdir,
 * the seccomp filter (struct sock_filter[] in hex; without --nnp before the capabilities are
 * dropped, as runc), look the program up in PATH (an executable regular file, as the user),
 * "\x01" on the error pipe, execve. A failure is written as JSON:
 *   {"step":S,"message":M,"kind":"command"|"kernel","syscall":C,"errno":N,"exitCode":X}
 * and the process exits with X.
 */
#include "sys.h"

enum { ERROR_FD = 3, CTRL_FD = 4, STDIN_FD = 5, STDOUT_FD = 6, STDERR_FD = 7, NS_FD0 = 8, MAX_LIST = 64 };
enum { SIG_SETMASK = 2, TIOCSPTLCK = 0x40045431, TIOCGPTPEER = 0x5441, TIOCSWINSZ = 0x5414, TIOCSCTTY = 0x540e };

/* Writes a failure report on the error pipe (its message: m1..m5 joined) and exits with `code`. */
static __attribute__((noreturn)) void fail(const char *step, const char *kind, const char *syscall, long err, int code, const char *m1,
                                           const char *m2, const char *m3, const char *m4, const char *m5) {
  const char *parts[5] = {m1, m2, m3, m4, m5};
  report_failure(ERROR_FD, step, parts, 5, kind, syscall, err, code);
}

/* A system call that must succeed: on an error, reports it as a kernel failure of `step`. */
static long must(long r, const char *step, const char *syscall) {
  if (r < 0) fail(step, "kernel", syscall, -r, 1, step, ": ", syscall, " failed", "");
  return r;
}

/* Makes `fd` available as `target`, without close-on-exec (dup3 refuses equal fds). */
static void place(long fd, int target) {
  if (fd == target) must(sys3(NR_fcntl, fd, F_SETFD, 0), "stdio", "fcntl");
  else must(sys3(NR_dup3, fd, target, 0), "stdio", "dup3");
}

/* Parses an unsigned decimal (or, with base 16, hex) number; -1 when `s` is not one. */
static long long parse_num(const char *s, int base) {
  long long v = 0;
  if (!s || !*s) return -1;
  for (; *s; s++) {
    int d = *s >= '0' && *s <= '9' ? *s - '0' : base == 16 && *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
    if (d < 0 || v > 0x7fffffffffffffffll / base - 1) return -1;
    v = v * base + d;
  }
  return v;
}

/* A RES:SOFT:HARD resource limit (SOFT and HARD decimal, or -1 for unlimited); 0 when malformed. */
static int parse_rlimit(const char *s, long *resource, u64 *soft, u64 *hard) {
  u64 v[3];
  for (int k = 0; k < 3; k++) {
    if (k > 0 && s[0] == '-' && s[1] == '1') v[k] = ~0ull, s += 2;
    else {
      const char *start = s;
      u64 n = 0;
      while (*s >= '0' && *s <= '9' && n < (1ull << 59)) n = n * 10 + (u64)(*s++ - '0');
      if (s == start) return 0;
      v[k] = n;
    }
    if (*s != (k < 2 ? ':' : 0)) return 0;
    s += k < 2;
  }
  if (v[0] > 63) return 0;
  *resource = (long)v[0], *soft = v[1], *hard = v[2];
  return 1;
}

static char candidate[4096 + 256];

#ifdef __cplusplus
extern "C"
#endif
__attribute__((noreturn, used)) void exec_main(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  must(become_private("berth-exec"), "prepare", "prctl");
  const char *cgroups[MAX_LIST], *cwd = "/", *tty = 0;
  char *seccomp = 0;
  long ns_types[MAX_LIST];
  unsigned groups[MAX_LIST];
  long rlimit_res[MAX_LIST];
  u64 rlimit_soft[MAX_LIST], rlimit_hard[MAX_LIST];
  int n_cgroups = 0, n_ns = 0, n_groups = 0, nnp = 0, n_rlimits = 0;
  long long uid = -1, gid = -1, caps = -1, oom = -1001;
  int i = 1;
  for (; i < argc && !eq(argv[i], "--"); i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : 0;
    if (eq(opt, "--nnp")) { nnp = 1; continue; }
    if (!val) exit_now(2);
    i++;
    if (eq(opt, "--cgroup") && n_cgroups < MAX_LIST) cgroups[n_cgroups++] = val;
    else if (eq(opt, "--ns") && n_ns < MAX_LIST) ns_types[n_ns++] = (long)parse_num(val, 10);
    else if (eq(opt, "--uid")) uid = parse_num(val, 10);
    else if (eq(opt, "--gid")) gid = parse_num(val, 10);
    else if (eq(opt, "--caps")) caps = parse_num(val, 16);
    else if (eq(opt, "--cwd")) cwd = val;
    else if (eq(opt, "--tty")) tty = val;
    else if (eq(opt, "--oom")) oom = *val == '-' ? -parse_num(val + 1, 10) : parse_num(val, 10);
    else if (eq(opt, "--rlimit") && n_rlimits < MAX_LIST) {
      if (!parse_rlimit(val, &rlimit_res[n_rlimits], &rlimit_soft[n_rlimits], &rlimit_hard[n_rlimits])) exit_now(2);
      n_rlimits++;
    }
    else if (eq(opt, "--seccomp")) seccomp = (char *)val;
    else if (eq(opt, "--groups")) {
      for (const char *s = val; *s && n_groups < MAX_LIST;) {
        unsigned long long g = 0;
        while (*s >= '0' && *s <= '9') g = g * 10 + (unsigned)(*s++ - '0');
        groups[n_groups++] = (unsigned)g;
        if (*s == ',') s++;
        else if (*s) exit_now(2);
      }
    } else exit_now(2);
  }
  if (i >= argc - 1 || uid < 0 || gid < 0 || caps < 0 || oom < -1001 || oom > 1000) exit_now(2);
  char **args = argv + i + 1;
  sys3(NR_fcntl, ERROR_FD, F_SETFD, FD_CLOEXEC);
  open_std_fds();

  must(sys3(NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0), "prepare", "prctl");
  sys3(NR_setsid, 0, 0, 0);
  reset_signals();

  for (int k = 0; k < n_cgroups; k++) {
    long fd = must(sys6(NR_openat, AT_FDCWD, (long)cgroups[k], O_WRONLY | O_CLOEXEC, 0, 0, 0), "cgroups", "open");
    must(sys3(NR_write, fd, "0", 1), "cgroups", "write");
    sys3(NR_close, fd, 0, 0);
  }
  /* Before the user namespace: lowering oom_score_adj wants the host's CAP_SYS_RESOURCE. */
  if (oom != -1001) must(set_oom_score_adj((long)oom), "oom_score_adj", "write");
  for (int k = 0; k < n_rlimits; k++) must(set_rlimit(rlimit_res[k], rlimit_soft[k], rlimit_hard[k]), "rlimits", "prlimit64");
  for (int k = 0; k < n_ns; k++) {
    must(sys3(NR_setns, NS_FD0 + k, ns_types[k], 0), "setns", "setns");
    sys3(NR_close, NS_FD0 + k, 0, 0);
    if (ns_types[k] == CLONE_NEWUSER /* joined last */) {
      /* Root of the container's user namespace (the host's root is unmapped there), so that the
       * terminal made below belongs to a mapped id; the privileges are dropped from there. */
      must(sys3(NR_setresgid, 0, 0, 0), "user namespace", "setresgid");
      must(sys3(NR_setresuid, 0, 0, 0), "user namespace", "setresuid");
      must(sys3(NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0), "user namespace", "prctl");
    }
  }

  if (tty) {
    const char *s = tty;
    unsigned short ws[4] = {0, 0, 0, 0};
    long cols = 0, rows = 0;
    while (*s >= '0' && *s <= '9') cols = cols * 10 + (*s++ - '0');
    if (*s++ != ':') exit_now(2);
    while (*s >= '0' && *s <= '9') rows = rows * 10 + (*s++ - '0');
    ws[0] = (unsigned short)rows, ws[1] = (unsigned short)cols;
    long master = must(sys6(NR_openat, AT_FDCWD, (long)"/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0, 0, 0), "terminal", "open");
    int unlock = 0;
    must(sys3(NR_ioctl, master, TIOCSPTLCK, &unlock), "terminal", "ioctl");
    long slave = must(sys3(NR_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC), "terminal", "ioctl");
    must(sys3(NR_fchown, slave, uid, -1), "terminal", "fchown");
    must(sys3(NR_ioctl, slave, TIOCSWINSZ, ws), "terminal", "ioctl");
    for (int fd = 0; fd < 3; fd++) place(slave, fd);
    if (slave > 2) sys3(NR_close, slave, 0, 0);
    must(sys3(NR_ioctl, 0, TIOCSCTTY, 0), "terminal", "ioctl");
    char msg[32], *p = msg;
    *p++ = 2;
    p = put_num(p, master);
    *p++ = '\n';
    sys3(NR_write, ERROR_FD, msg, p - msg);
    char ack;
    long got;
    do got = sys3(NR_read, CTRL_FD, &ack, 1);
    while (got == -EINTR);
    sys3(NR_close, master, 0, 0);
    if (got != 1) fail("terminal", "other", 0, 0, 1, "the runtime did not take the terminal", "", "", "", "");
  } else {
    long in = STDIN_FD;
    if (sys3(NR_fcntl, STDIN_FD, F_GETFL, 0) < 0) in = must(sys6(NR_openat, AT_FDCWD, (long)"/dev/null", O_RDONLY | O_CLOEXEC, 0, 0, 0), "stdio", "open");
    place(in, 0);
    place(STDOUT_FD, 1);
    place(STDERR_FD, 2);
  }

  must(join_new_session_keyring(), "keyring", "keyctl");
  if (seccomp && !nnp) must(load_seccomp(seccomp), "seccomp", "seccomp");
  for (int cap = 0; cap < 64; cap++) {
    if (caps & (1ll << cap)) continue;
    long r = sys3(NR_prctl, PR_CAPBSET_DROP, cap, 0);
    if (r < 0 && r != -22 /* EINVAL: beyond the kernel's last capability */) must(r, "capabilities", "prctl");
  }
  must(sys6(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0), "capabilities", "prctl");
  must(sys3(NR_setgroups, n_groups, groups, 0), "capabilities", "setgroups");
  must(sys3(NR_setresgid, gid, gid, gid), "capabilities", "setresgid");
  must(sys3(NR_setresuid, uid, uid, uid), "capabilities", "setresuid");
  /* A non-zero uid lost every capability in setresuid; root keeps exactly the mask. */
  must(set_capabilities(uid == 0 ? (u64)caps : 0), "capabilities", "capset");
  if (nnp) must(sys6(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0), "capabilities", "prctl");
  must(sys3(NR_chdir, cwd, 0, 0), "workdir", "chdir");
  if (seccomp && nnp) must(load_seccomp(seccomp), "seccomp", "seccomp");
  sys3(NR_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC);

  /* execvp(3)'s search, with the container's PATH, done before the marker (see init.ts). */
  const char *file = args[0];
  int denied, slash = 0;
  for (const char *s = file; *s; s++) slash |= *s == '/';
  const char *path = find_program(file, envp, candidate, sizeof candidate, &denied);
  if (!path && denied) fail("exec", "command", 0, 0, 126, "exec: \"", file, "\": permission denied", "", "");
  if (!path && slash) fail("exec", "command", 0, 0, 127, "exec: \"", file, "\": stat ", file, ": no such file or directory");
  if (!path) fail("exec", "command", 0, 0, 127, "exec: \"", file, "\": executable file not found in $PATH", "", "");
  sys3(NR_write, ERROR_FD, "\1", 1);
  long r = sys3(NR_execve, path, args, envp);
  if (r == -ENOEXEC) fail("exec", "command", 0, 0, 126, "exec: \"", file, "\": exec format error", "", "");
  if (r == -EACCES) fail("exec", "command", 0, 0, 126, "exec: \"", file, "\": permission denied", "", "");
  fail("exec", "kernel", "execve", -r, 126, "exec: \"", file, "\": execve failed", "", "");
}

BERTH_START(exec_main)
