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
 * "\x01" on the error pipe, execve. A failure is written as JSON on the error pipe (failure.h)
 * and the process exits with its code. The steps it shares with berth-init are in failure.h,
 * term.h (stdio and the terminal), privileges.h and program.h (the exec).
 */
#include "term.h"
#include "privileges.h"
#include "program.h"

enum { NS_FD0 = 8, MAX_LIST = 64 };

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

#ifdef __cplusplus
extern "C"
#endif
__attribute__((noreturn, used)) void exec_main(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  must(become_private("berth-exec"), "prctl", 0);
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

  must(sys3(NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0), "prctl", 0);
  sys3(NR_setsid, 0, 0, 0);
  reset_signals();

  set_step("cgroups", 0);
  for (int k = 0; k < n_cgroups; k++) {
    long fd = must(sys6(NR_openat, AT_FDCWD, (long)cgroups[k], O_WRONLY | O_CLOEXEC, 0, 0, 0), "open", 0);
    must(sys3(NR_write, fd, "0", 1), "write", 0);
    sys3(NR_close, fd, 0, 0);
  }
  /* Before the user namespace: lowering oom_score_adj wants the host's CAP_SYS_RESOURCE. */
  set_step("oom_score_adj", 0);
  if (oom != -1001) must(set_oom_score_adj((long)oom), "write", 0);
  set_step("rlimits", 0);
  for (int k = 0; k < n_rlimits; k++) must(set_rlimit(rlimit_res[k], rlimit_soft[k], rlimit_hard[k]), "prlimit64", 0);
  for (int k = 0; k < n_ns; k++) {
    set_step("setns", 0);
    must(sys3(NR_setns, NS_FD0 + k, ns_types[k], 0), "setns", 0);
    sys3(NR_close, NS_FD0 + k, 0, 0);
    if (ns_types[k] == CLONE_NEWUSER /* joined last */) {
      /* Root of the container's user namespace (the host's root is unmapped there), so that the
       * terminal made below belongs to a mapped id; the privileges are dropped from there. */
      set_step("user namespace", 0);
      must(sys3(NR_setresgid, 0, 0, 0), "setresgid", 0);
      must(sys3(NR_setresuid, 0, 0, 0), "setresuid", 0);
      must(sys3(NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0), "prctl", 0);
    }
  }

  if (tty) {
    const char *s = tty;
    long cols = 0, rows = 0;
    while (*s >= '0' && *s <= '9') cols = cols * 10 + (*s++ - '0');
    if (*s++ != ':') exit_now(2);
    while (*s >= '0' && *s <= '9') rows = rows * 10 + (*s++ - '0');
    set_step("terminal", 0);
    long slave, master = open_terminal((long)uid, rows, cols, &slave);
    hand_over_terminal(master, slave);
  } else {
    set_step("stdio", 0);
    wire_pipes();
  }

  set_step("keyring", 0);
  must(join_new_session_keyring(), "keyctl", 0);
  set_step("seccomp", 0);
  if (seccomp && !nnp) must(load_seccomp(seccomp), "seccomp", 0);
  set_step("capabilities", 0);
  drop_privileges((u64)caps, groups, n_groups, uid, gid, nnp);
  set_step("workdir", 0);
  must(sys3(NR_chdir, cwd, 0, 0), "chdir", 0);
  set_step("seccomp", 0);
  if (seccomp && nnp) must(load_seccomp(seccomp), "seccomp", 0);
  sys3(NR_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC);

  set_step("exec", 0);
  long r = exec_program(args, envp);
  const char *parts[3] = {"exec: \"", args[0], "\": execve failed"};
  report_failure(ERROR_FD, step, parts, 3, "kernel", "execve", -r, 126);
}

BERTH_START(exec_main)
