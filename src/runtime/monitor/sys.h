/*
 * What berth's freestanding programs (monitor.c, exec.c, init.c) share: raw system calls on
 * x86_64 and aarch64, the kernel constants they use (constants.h), memset/memcpy for the
 * compiler, exit, decimal and JSON string output, string comparison, reads, and the process
 * settings of berth-init and berth-exec (keyring, limits, signals, seccomp). No libc. Valid C and
 * C++. The steps only berth-init and berth-exec share are in failure.h, term.h, privileges.h and
 * program.h; each program is one translation unit that includes what it uses.
 */
#ifndef BERTH_SYS_H
#define BERTH_SYS_H

#if defined(__x86_64__)
enum {
  NR_read = 0, NR_write = 1, NR_close = 3, NR_lseek = 8, NR_rt_sigaction = 13, NR_rt_sigprocmask = 14,
  NR_ioctl = 16, NR_getpid = 39, NR_execve = 59, NR_fcntl = 72, NR_ftruncate = 77, NR_chdir = 80,
  NR_fchown = 93, NR_setsid = 112, NR_setgroups = 116, NR_setresuid = 117, NR_setresgid = 119,
  NR_capset = 126, NR_prctl = 157, NR_clock_gettime = 228, NR_exit_group = 231, NR_waitid = 247,
  NR_openat = 257, NR_faccessat = 269, NR_ppoll = 271, NR_dup3 = 292, NR_setns = 308,
  NR_renameat2 = 316, NR_statx = 332, NR_seccomp = 317,
  NR_mmap = 9, NR_socket = 41, NR_clone = 56, NR_wait4 = 61, NR_kill = 62, NR_umask = 95,
  NR_setpgid = 109, NR_rt_sigtimedwait = 128, NR_pivot_root = 155, NR_mount = 165, NR_umount2 = 166,
  NR_sethostname = 170, NR_setdomainname = 171, NR_mkdirat = 258, NR_mknodat = 259,
  NR_symlinkat = 266, NR_unshare = 272,
  NR_getdents64 = 217, NR_fchownat = 260, NR_readlinkat = 267, NR_fchmodat = 268, NR_utimensat = 280,
  NR_keyctl = 250, NR_prlimit64 = 302, NR_unlinkat = 263,
  O_DIRECTORY = 0200000, O_NOFOLLOW = 0400000,
};
#elif defined(__aarch64__)
enum {
  NR_read = 63, NR_write = 64, NR_close = 57, NR_lseek = 62, NR_rt_sigaction = 134, NR_rt_sigprocmask = 135,
  NR_ioctl = 29, NR_getpid = 172, NR_execve = 221, NR_fcntl = 25, NR_ftruncate = 46, NR_chdir = 49,
  NR_fchown = 55, NR_setsid = 157, NR_setgroups = 159, NR_setresuid = 147, NR_setresgid = 149,
  NR_capset = 91, NR_prctl = 167, NR_clock_gettime = 113, NR_exit_group = 94, NR_waitid = 95,
  NR_openat = 56, NR_faccessat = 48, NR_ppoll = 73, NR_dup3 = 24, NR_setns = 268,
  NR_renameat2 = 276, NR_statx = 291, NR_seccomp = 277,
  NR_mmap = 222, NR_socket = 198, NR_clone = 220, NR_wait4 = 260, NR_kill = 129, NR_umask = 166,
  NR_setpgid = 154, NR_rt_sigtimedwait = 137, NR_pivot_root = 41, NR_mount = 40, NR_umount2 = 39,
  NR_sethostname = 161, NR_setdomainname = 162, NR_mkdirat = 34, NR_mknodat = 33,
  NR_symlinkat = 36, NR_unshare = 97,
  NR_getdents64 = 61, NR_fchownat = 54, NR_readlinkat = 78, NR_fchmodat = 53, NR_utimensat = 88,
  NR_keyctl = 219, NR_prlimit64 = 261, NR_unlinkat = 35,
  O_DIRECTORY = 040000, O_NOFOLLOW = 0100000,
};
#else
#error "berth's native programs support x86_64 and aarch64 only"
#endif
enum { NR_open_tree = 428, NR_move_mount = 429, NR_pidfd_open = 434, NR_close_range = 436, NR_mount_setattr = 442 };

/* The kernel constants shared with src/kernel/constants.ts (generated from it). */
#include "constants.h"

/* Other constants from the kernel's uapi headers (the same on both architectures). */
enum {
  EINTR = 4, EIO = 5, EAGAIN = 11, EACCES = 13, ENOENT = 2, ENOEXEC = 8, EEXIST = 17, ENOTDIR = 20,
  EINVAL = 22, ENAMETOOLONG = 36, ENOSYS = 38, ELOOP = 40, SEEK_END = 2,
  POLLIN = 0x001, P_PIDFD = 3, WEXITED = 4, CLD_EXITED = 1, CLD_KILLED = 2, CLD_DUMPED = 3,
  CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, SIG_SETMASK = 2, F_OK = 0, X_OK = 1, S_IFMT = 0170000, S_IFDIR = 0040000, STATX_TYPE = 1, STATX_MODE = 2,
};

typedef unsigned long long u64;

/* One system call with up to six arguments; returns the result or -errno. */
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#else
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
#endif
}
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

struct timespec_k { long sec, nsec; };
/* The kernel's struct sigaction (not libc's): handler, flags, restorer, mask. */
struct sigaction_k { long handler, flags, restorer; u64 mask; };

#ifdef __cplusplus
extern "C" {
#endif
/* Compilers may emit calls to these even in freestanding code (GCC documents it). Byte loops
 * through volatile pointers cannot be turned back into calls to themselves. */
void *memset(void *dst, int c, unsigned long n) {
  volatile unsigned char *d = (volatile unsigned char *)dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}
void *memcpy(void *dst, const void *src, unsigned long n) {
  volatile unsigned char *d = (volatile unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
  while (n--) *d++ = *s++;
  return dst;
}
#ifdef __cplusplus
}
#endif

static __attribute__((noreturn)) void exit_now(int code) {
  for (;;) sys3(NR_exit_group, code, 0, 0);
}

/* Appends the decimal digits of `v` (may be negative) at `p`; returns the new end. */
static char *put_num(char *p, long long v) {
  char tmp[24];
  int n = 0;
  u64 u = v < 0 ? (u64)0 - (u64)v : (u64)v;
  if (v < 0) *p++ = '-';
  do tmp[n++] = (char)('0' + u % 10); while ((u /= 10) != 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}

static char *put_str(char *p, const char *s) {
  while (*s) *p++ = *s++;
  return p;
}

/* Appends `s` as the body of a JSON string (quotes, backslashes and control characters escaped). */
static __attribute__((unused)) char *put_json(char *p, const char *s, const char *end) {
  static const char hex[] = "0123456789abcdef";
  for (; *s && p < end - 8; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') *p++ = '\\', *p++ = (char)c;
    else if (c < 0x20) *p++ = '\\', *p++ = 'u', *p++ = '0', *p++ = '0', *p++ = hex[c >> 4], *p++ = hex[c & 15];
    else *p++ = (char)c;
  }
  return p;
}

static __attribute__((unused)) int eq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

/* strlen(3). */
static __attribute__((unused)) unsigned long len(const char *s) {
  unsigned long n = 0;
  while (s[n]) n++;
  return n;
}

/* Whether `s` starts with `prefix`. */
static __attribute__((unused)) int starts(const char *s, const char *prefix) {
  while (*prefix && *s == *prefix) s++, prefix++;
  return !*prefix;
}

/* A system call of three arguments, again while it is interrupted (EINTR). */
static __attribute__((unused)) long retry(long n, long a, long b, long c) {
  long r;
  do r = sys3(n, a, b, c);
  while (r == -EINTR);
  return r;
}

/* Reads exactly `n` bytes; 0 at end of file (or an error) before that. */
static __attribute__((unused)) int read_exactly(int fd, char *buf, unsigned long n) {
  while (n > 0) {
    long got = retry(NR_read, fd, (long)buf, (long)n);
    if (got <= 0) return 0;
    buf += got, n -= (unsigned long)got;
  }
  return 1;
}

/* statx(2)'s result, up to the mode; the rest as padding. */
struct statx_k { unsigned mask, blksize; u64 attributes; unsigned nlink, uid, gid; unsigned short mode; char rest[256 - 30]; };

/*
 * Gives this process a new, empty session keyring (keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL), as
 * runc gives each container one): the one inherited from the zygote is the engine's, with its
 * keys. 0 or -errno; ENOSYS (a kernel without keys: nothing to reach) counts as done.
 */
static __attribute__((unused)) long join_new_session_keyring(void) {
  long r = sys3(NR_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0, 0);
  return r >= 0 || r == -ENOSYS ? 0 : r;
}

/* Writes `value` to /proc/self/oom_score_adj. 0 or -errno. */
static __attribute__((unused)) long set_oom_score_adj(long value) {
  char text[24], *end = put_num(text, value);
  long fd = sys6(NR_openat, AT_FDCWD, (long)"/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC, 0, 0, 0);
  if (fd < 0) return fd;
  long r = sys3(NR_write, fd, text, end - text);
  sys3(NR_close, fd, 0, 0);
  return r < 0 ? r : 0;
}

/* Sets this process's limit of `resource` (prlimit64). 0 or -errno. */
static __attribute__((unused)) long set_rlimit(long resource, u64 soft, u64 hard) {
  u64 limit[2] = {soft, hard};
  return sys6(NR_prlimit64, 0, resource, (long)limit, 0, 0, 0);
}

/* Fds 0-2 open (on /dev/null where one is closed), so that no fd opened later lands there. */
static __attribute__((unused)) void open_std_fds(void) {
  for (int fd = 0; fd < 3; fd++)
    if (sys3(NR_fcntl, fd, F_GETFL, 0) < 0) sys6(NR_openat, AT_FDCWD, (long)"/dev/null", O_RDWR, 0, 0, 0);
}

/*
 * The first thing berth-init and berth-exec do: make this process non-dumpable until the
 * container's program is exec'd (execve resets it), so that no process of the container, without
 * CAP_SYS_PTRACE, can open our /proc/<pid>/exe, mem or environ; and give it its name (started from
 * a sealed copy at /proc/self/fd/N, see sealed-program.ts, it would be named "N"). Returns the
 * result of prctl(PR_SET_DUMPABLE).
 */
static __attribute__((unused)) long become_private(const char *name) {
  long r = sys3(NR_prctl, PR_SET_DUMPABLE, 0, 0);
  sys3(NR_prctl, PR_SET_NAME, name, 0);
  return r;
}

/* Every signal to its default action and an empty mask: posix_spawn keeps ignored signals ignored and the mask as it was. */
static __attribute__((unused)) void reset_signals(void) {
  struct sigaction_k dfl = {0, 0, 0, 0};
  for (int sig = 1; sig <= 64; sig++) sys6(NR_rt_sigaction, sig, (long)&dfl, 0, 8, 0, 0);
  u64 empty = 0;
  sys6(NR_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, 8, 0, 0);
}

/*
 * Installs the seccomp filter given in hex (a `struct sock_filter` array, as seccompFilterHex in
 * src/runtime/seccomp makes it), decoded in place: byte i is written where characters 2i and
 * 2i+1 were already read. Returns 0 or -errno (-EINVAL for a malformed program).
 */
static __attribute__((unused)) long load_seccomp(char *hex) {
  unsigned long n = 0;
  for (; hex[2 * n] && hex[2 * n + 1]; n++) {
    int d[2];
    for (int k = 0; k < 2; k++) {
      char c = hex[2 * n + k];
      d[k] = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d[k] < 0) return -EINVAL;
    }
    hex[n] = (char)(d[0] << 4 | d[1]);
  }
  if (hex[2 * n] || n == 0 || n % 8 || n / 8 > 4096) return -EINVAL;
  struct { unsigned short len; void *filter; } prog = {(unsigned short)(n / 8), hex};
  return sys3(NR_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, &prog);
}

/* The entry point: the kernel leaves argc, argv[], NULL, envp[] on the stack; main_sp(sp) gets it. */
#if defined(__x86_64__)
#define BERTH_START(main_sp)                                   \
  __asm__(".text\n.global _start\n_start:\n"                  \
          "  xor %rbp, %rbp\n"                                 \
          "  mov %rsp, %rdi\n"                                 \
          "  and $-16, %rsp\n"                                 \
          "  call " #main_sp "\n"                              \
          "  hlt\n");
#else
#define BERTH_START(main_sp)                                   \
  __asm__(".text\n.global _start\n_start:\n"                  \
          "  mov x29, #0\n"                                    \
          "  mov x30, #0\n"                                    \
          "  mov x0, sp\n"                                     \
          "  bl " #main_sp "\n"                                \
          "  b .\n");
#endif

#endif
