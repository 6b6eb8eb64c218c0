/*
 * berth-probe: the escape suite's attempts, one per subcommand, run inside a container.
 *
 * Built static (glibc) by test/security/probe.ts and bound read-only at /probe. Each attempt
 * prints one line and exits:
 *
 *   ok [detail]        the attempt succeeded (exit 0): for an escape, the hole is open
 *   err ERRNO [what]   the kernel refused it (exit 1), ERRNO by name (EPERM, ENOSYS, …)
 *   usage: …           unknown subcommand or arguments (exit 2)
 *
 * The attempts never damage the host when they succeed: a file opened for writing is not
 * written (`catch … exe` writes a byte back unchanged), a device is only read, a mount is made
 * inside the container's own namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case ETXTBSY: return "ETXTBSY";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOKEY: return "ENOKEY";
    case EKEYREVOKED: return "EKEYREVOKED";
    case EMFILE: return "EMFILE";
    case ENOMEM: return "ENOMEM";
    case EOVERFLOW: return "EOVERFLOW";
    case E2BIG: return "E2BIG";
    case ELOOP: return "ELOOP";
    default: return "E?";
  }
}

static int ok(const char *detail) {
  printf("ok%s%s\n", detail ? " " : "", detail ? detail : "");
  return 0;
}

static int err(const char *what) {
  int e = errno;
  printf("err %s %s\n", errno_name(e), what);
  return 1;
}

/* The result of a raw system call: ok when it returned >= 0. */
static int result(long r, const char *what) {
  return r < 0 ? err(what) : ok(NULL);
}

static int probe_clone_newuser(void) {
  long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) return err("clone(CLONE_NEWUSER)");
  if (pid == 0) _exit(0);
  waitpid((pid_t)pid, NULL, 0);
  return ok(NULL);
}

static int probe_clone3(void) {
  /* struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls */
  uint64_t args[8] = { CLONE_NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0 };
  long pid = syscall(435 /* clone3 */, args, sizeof args);
  if (pid < 0) return err("clone3");
  if (pid == 0) _exit(0);
  waitpid((pid_t)pid, NULL, 0);
  return ok(NULL);
}

static int probe_perf(void) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.type = PERF_TYPE_SOFTWARE;
  a.size = sizeof a;
  a.config = PERF_COUNT_SW_CPU_CLOCK;
  a.disabled = 1;
  a.exclude_kernel = 1;
  a.exclude_hv = 1;
  return result(syscall(SYS_perf_event_open, &a, 0, -1, -1, 0), "perf_event_open");
}

static int probe_bpf(void) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_ARRAY;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = 1;
  return result(syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a), "bpf(BPF_MAP_CREATE)");
}

static int probe_io_uring(void) {
  char params[120];
  memset(params, 0, sizeof params);
  return result(syscall(425 /* io_uring_setup */, 4, params), "io_uring_setup");
}

static int probe_ptrace(const char *pid) {
  long r = ptrace(PTRACE_ATTACH, (pid_t)atoi(pid), 0, 0);
  if (r < 0) return err("ptrace(PTRACE_ATTACH)");
  ptrace(PTRACE_DETACH, (pid_t)atoi(pid), 0, 0);
  return ok(NULL);
}

/*
 * mknod a device node at `path` (type b or c, major:minor; an existing node there is replaced),
 * open it read-only and read up to 512 bytes. Never writes to the device.
 */
static int probe_mknod_read_at(const char *path, const char *type, const char *major, const char *minor) {
  unlink(path);
  mode_t kind = !strcmp(type, "c") ? S_IFCHR : S_IFBLK;
  if (mknod(path, kind | 0600, makedev(atoi(major), atoi(minor))) < 0) return err("mknod");
  int fd = open(path, O_RDONLY);
  if (fd < 0) return err("open");
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0) return err("read");
  close(fd);
  char detail[32];
  snprintf(detail, sizeof detail, "read %zd", n);
  return ok(detail);
}

/* mknod a block device (major:minor) at /tmp/probe-dev and read its first 512 bytes. */
static int probe_mknod_read(const char *major, const char *minor) {
  return probe_mknod_read_at("/tmp/probe-dev", "b", major, minor);
}

/* Opens `path` for writing (O_WRONLY, no O_TRUNC) and writes nothing. */
static int probe_open_write(const char *path) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return err("open(O_WRONLY)");
  close(fd);
  return ok(NULL);
}

static int probe_read(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return err("open");
  static char buf[1 << 16];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n < 0) return err("read");
  for (ssize_t i = 0; i < n; i++) if (buf[i] == 0) buf[i] = '\n';
  buf[n] = 0;
  printf("ok\n%s", buf);
  return 0;
}

static int probe_keyctl_read_user(void) {
  /* Describe the user keyring: the first step of reading keys in it. */
  char desc[256];
  long r = syscall(SYS_keyctl, KEYCTL_DESCRIBE, KEY_SPEC_USER_KEYRING, desc, sizeof desc - 1, 0);
  if (r < 0) return err("keyctl(KEYCTL_DESCRIBE, @u)");
  desc[r < (long)sizeof desc ? r : (long)sizeof desc - 1] = 0;
  return ok(desc);
}

/* Searches the session keyring for a user key of this description and prints its payload. */
static int probe_keyctl_search_session(const char *description) {
  long id = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", description, 0);
  if (id < 0) return err("keyctl(KEYCTL_SEARCH, @s)");
  char payload[256];
  long n = syscall(SYS_keyctl, KEYCTL_READ, id, payload, sizeof payload - 1, 0);
  if (n < 0) return err("keyctl(KEYCTL_READ)");
  payload[n < (long)sizeof payload ? n : (long)sizeof payload - 1] = 0;
  return ok(payload);
}

static int probe_add_key(void) {
  return result(syscall(SYS_add_key, "user", "berth-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING), "add_key");
}

static int probe_request_key(void) {
  return result(syscall(SYS_request_key, "user", "berth-probe-none", NULL, 0), "request_key");
}

static int probe_userfaultfd(void) {
  return result(syscall(SYS_userfaultfd, O_CLOEXEC), "userfaultfd");
}

static int probe_mount(void) {
  mkdir("/tmp/probe-mnt", 0700);
  return result(mount("tmpfs", "/tmp/probe-mnt", "tmpfs", 0, NULL), "mount");
}

static int probe_kexec(void) {
  return result(syscall(SYS_kexec_load, 0, 0, NULL, 0), "kexec_load");
}

static int probe_open_by_handle(void) {
  char h[8 + 128];
  memset(h, 0, sizeof h);
  *(unsigned *)h = 128;
  return result(syscall(SYS_open_by_handle_at, AT_FDCWD, h, O_RDONLY), "open_by_handle_at");
}

static int probe_unshare(const char *what) {
  int flags = 0;
  if (!strcmp(what, "user")) flags = CLONE_NEWUSER;
  else if (!strcmp(what, "mnt")) flags = CLONE_NEWNS;
  else if (!strcmp(what, "net")) flags = CLONE_NEWNET;
  else if (!strcmp(what, "pid")) flags = CLONE_NEWPID;
  else if (!strcmp(what, "uts")) flags = CLONE_NEWUTS;
  else if (!strcmp(what, "cgroup")) flags = CLONE_NEWCGROUP;
  else { printf("usage: unshare user|mnt|net|pid|uts|cgroup\n"); return 2; }
  return result(unshare(flags), "unshare");
}

static int probe_personality(const char *value) {
  return result(syscall(SYS_personality, strtoul(value, NULL, 0)), "personality");
}

static int probe_dumpable(void) {
  char d[16];
  snprintf(d, sizeof d, "%d", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
  return ok(d);
}

/* A handle (O_PATH) on `path`, as CVE-2019-5736 takes on /proc/<pid>/exe: prints its st_dev,
 * st_ino and what it links to, for the caller to compare with the host's file. */
static int probe_exe_handle(const char *path) {
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) return err("open(O_PATH)");
  struct stat st;
  if (fstat(fd, &st) < 0) return err("fstat");
  char self[64], link[4096];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(self, link, sizeof link - 1);
  link[n < 0 ? 0 : n] = 0;
  printf("ok dev=%llu ino=%llu link=%s\n", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, link);
  return 0;
}

/* The seals of the file at `path` (F_GET_SEALS; EINVAL when it is no memfd). */
static int probe_seals(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return err("open");
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return err("fcntl(F_GET_SEALS)");
  char d[32];
  snprintf(d, sizeof d, "seals=%d", seals);
  return ok(d);
}

/* Opens `path` for reading (and reads nothing). */
static int probe_open_read(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return err("open(O_RDONLY)");
  close(fd);
  return ok(NULL);
}

static int probe_sleep(const char *seconds) {
  sleep((unsigned)atoi(seconds));
  return ok(NULL);
}

/*
 * For `seconds`, watches for a process (not this one) whose argv[0] holds `pattern` and opens
 * its /proc/<pid>/`file`. With `file` exe, the attack of CVE-2019-5736: a handle (O_PATH) on
 * the binary, reopened for writing once nothing executes it any more (ETXTBSY until then), its
 * first byte read and written back unchanged. Otherwise (environ, mem) an open for reading.
 * Prints the first failure of the last process tried and how many times a process matched.
 */
/* Whether argv[0] of process `pid` holds `pattern`. */
static int argv0_holds(const char *pid, const char *pattern) {
  char path[64], cmd[256];
  snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
  int c = open(path, O_RDONLY | O_CLOEXEC);
  if (c < 0) return 0;
  ssize_t n = read(c, cmd, sizeof cmd - 1);
  close(c);
  if (n <= 0) return 0;
  cmd[n] = 0; /* argv[0] ends at the first NUL */
  return strstr(cmd, pattern) != NULL;
}

static int probe_catch(const char *pattern, const char *seconds, const char *file) {
  time_t end = time(NULL) + atoi(seconds);
  int exe = !strcmp(file, "exe"), fd = -1, seen = 0, last = ESRCH;
  const char *what = "no process matched";
  char path[300], detail[4400], link[4096] = "";
  while (fd < 0 && time(NULL) < end) {
    DIR *proc = opendir("/proc");
    if (!proc) return err("opendir(/proc)");
    struct dirent *e;
    while (fd < 0 && (e = readdir(proc))) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9' || atoi(e->d_name) == getpid()) continue;
      if (!argv0_holds(e->d_name, pattern)) continue;
      seen++;
      snprintf(path, sizeof path, "/proc/%s/%s", e->d_name, file);
      fd = open(path, (exe ? O_PATH : O_RDONLY) | O_CLOEXEC);
      if (fd < 0) last = errno, what = exe ? "open(/proc/<pid>/exe, O_PATH)" : "open(/proc/<pid>/<file>)";
      /* It may have exec'd another program meanwhile (argv and exe change together in execve). */
      else if (!argv0_holds(e->d_name, pattern)) close(fd), fd = -1;
    }
    closedir(proc);
  }
  if (fd < 0) {
    snprintf(detail, sizeof detail, "%s (matched %d times)", what, seen);
    errno = last;
    return err(detail);
  }
  if (!exe) {
    snprintf(detail, sizeof detail, "opened %s (matched %d times)", file, seen);
    return ok(detail);
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  link[n < 0 ? 0 : n] = 0;
  int w;
  while ((w = open(path, O_RDWR | O_CLOEXEC)) < 0 && errno == ETXTBSY && time(NULL) < end) usleep(1000);
  char byte;
  const char *failed = w < 0 ? "reopen for writing" : pread(w, &byte, 1, 0) != 1 ? "pread" : pwrite(w, &byte, 1, 0) != 1 ? "pwrite" : NULL;
  int e = errno;
  if (w >= 0) close(w);
  snprintf(detail, sizeof detail, "%s %s", failed ? failed : "wrote", link);
  if (!failed) return ok(detail);
  errno = e;
  return err(detail);
}

/* socket(family, SOCK_STREAM, 0): AF_VSOCK (40) and AF_ALG (38) are refused by Docker's seccomp profile. */
static int probe_socket(const char *family) {
  long fd = syscall(SYS_socket, atoi(family), 1 /* SOCK_STREAM */, 0);
  if (fd < 0 && errno == EAFNOSUPPORT) {
    printf("err EAFNOSUPPORT socket\n"); /* the family is not built into this kernel: the call reached it */
    return 1;
  }
  return result(fd, "socket");
}

/* A call through the i386 compat ABI (int 0x80: i386 numbers, 32-bit arguments), x86_64 only. */
static int probe_int80(const char *nr, const char *a, const char *b) {
#if defined(__x86_64__)
  long r;
  register long r8 __asm__("r8"), r9 __asm__("r9"), r10 __asm__("r10"), r11 __asm__("r11");
  __asm__ volatile("int $0x80" : "=a"(r), "=r"(r8), "=r"(r9), "=r"(r10), "=r"(r11)
                   : "a"(strtol(nr, NULL, 0)), "b"(strtol(a, NULL, 0)), "c"(strtol(b, NULL, 0)), "d"(0L) : "memory");
  if (r < 0 && r > -4096) {
    errno = (int)-r;
    return err("int 0x80");
  }
  return ok(NULL);
#else
  (void)nr, (void)a, (void)b;
  printf("usage: int80 needs x86_64\n");
  return 2;
#endif
}

#include <netinet/in.h>
#include <sys/socket.h>

/* An ICMP echo socket (what ping uses without CAP_NET_RAW): allowed by net.ipv4.ping_group_range. */
static int probe_icmp_socket(void) {
  return result(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), "socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)");
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *c = argc > 1 ? argv[1] : "";
  if (!strcmp(c, "clone-newuser")) return probe_clone_newuser();
  if (!strcmp(c, "clone3")) return probe_clone3();
  if (!strcmp(c, "unshare") && argc > 2) return probe_unshare(argv[2]);
  if (!strcmp(c, "perf_event_open")) return probe_perf();
  if (!strcmp(c, "bpf")) return probe_bpf();
  if (!strcmp(c, "io_uring")) return probe_io_uring();
  if (!strcmp(c, "userfaultfd")) return probe_userfaultfd();
  if (!strcmp(c, "mount")) return probe_mount();
  if (!strcmp(c, "kexec_load")) return probe_kexec();
  if (!strcmp(c, "open_by_handle_at")) return probe_open_by_handle();
  if (!strcmp(c, "add_key")) return probe_add_key();
  if (!strcmp(c, "request_key")) return probe_request_key();
  if (!strcmp(c, "keyctl-user")) return probe_keyctl_read_user();
  if (!strcmp(c, "keyctl-search") && argc > 2) return probe_keyctl_search_session(argv[2]);
  if (!strcmp(c, "ptrace") && argc > 2) return probe_ptrace(argv[2]);
  if (!strcmp(c, "mknod-read") && argc > 3) return probe_mknod_read(argv[2], argv[3]);
  if (!strcmp(c, "open-write") && argc > 2) return probe_open_write(argv[2]);
  if (!strcmp(c, "read") && argc > 2) return probe_read(argv[2]);
  if (!strcmp(c, "personality") && argc > 2) return probe_personality(argv[2]);
  if (!strcmp(c, "dumpable")) return probe_dumpable();
  if (!strcmp(c, "mknod-read-at") && argc > 5) return probe_mknod_read_at(argv[2], argv[3], argv[4], argv[5]);
  if (!strcmp(c, "exe-handle") && argc > 2) return probe_exe_handle(argv[2]);
  if (!strcmp(c, "seals") && argc > 2) return probe_seals(argv[2]);
  if (!strcmp(c, "open-read") && argc > 2) return probe_open_read(argv[2]);
  if (!strcmp(c, "sleep") && argc > 2) return probe_sleep(argv[2]);
  if (!strcmp(c, "catch") && argc > 4) return probe_catch(argv[2], argv[3], argv[4]);
  if (!strcmp(c, "socket") && argc > 2) return probe_socket(argv[2]);
  if (!strcmp(c, "int80") && argc > 4) return probe_int80(argv[2], argv[3], argv[4]);
  if (!strcmp(c, "icmp-socket")) return probe_icmp_socket();
  printf("usage: probe <attempt> [args]\n");
  return 2;
}
