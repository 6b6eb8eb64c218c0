/*
 * berth-monitor: stays beside one detached container, as podman's conmon does.
 *
 *   berth-monitor <child-pid> <exit-path> [<log-path> <max-size> <max-file> [<max-output> <keep> <timeout-ms>]]
 *
 * It was exec'd by the process that forked <child-pid>, so that pid is its own child. It
 * (a) keeps reading the container's output and appends it to the log file, one record per
 * chunk read (src/runtime/log-format.ts):
 *
 *   kind:u8 (0x81 stdout, 0x82 stderr) | time:u64le (ns since epoch) | length:u32le | bytes | length:u32le
 *
 * With <log-path> it rotates the log as src/runtime/log-writer.ts does: before a record would
 * take the file past <max-size> bytes, <log-path>.(max-file − 2) is renamed over
 * <log-path>.(max-file − 1) … <log-path> to <log-path>.1 (with <max-file> 1 the file is removed),
 * a new <log-path> is opened on fd 5, and it starts with a boundary record (kind 0x83, one byte:
 * bit 0 when stdout was mid-line, bit 1 for stderr).
 *
 * With <max-output> above 0 it caps what the log keeps of each stream, keeping its `head` or
 * `tail` (<keep>), as src/runtime/log-cap.ts says (logcap.h): with `tail` the rotation is the
 * cap's, in at most 3 files, and <max-size> <max-file> do not apply. What is not kept is still
 * read from the pipe at once.
 *
 * With <timeout-ms> above 0 (the container's run time limit) it (b) SIGKILLs the child once that
 * many ms passed since the monitor started (right after the program's execve): the child is PID 1
 * of its PID namespace, so every process of the container dies with it.
 *
 * and (c) reaps the child, then writes
 * `{"pid":P,"exitCode":C[,"signal":S],"finishedAt":T[,"timedOut":true][,"outputTruncated":{...}]}`
 * to <exit-path>.tmp-<own pid> and renames it to <exit-path>. That temp file is made at start
 * with EXIT_RESERVE bytes and the record is written into them in place, so a container that
 * filled the disk cannot lose its exit.
 *
 * File descriptors at start:
 *   3  stdout source: a pipe read end, or a pty master (EIO there means end of file)
 *   4  stderr source: a pipe read end, or not open at all (tty containers)
 *   5  the log file, opened O_WRONLY|O_APPEND
 *   6  maybe a stdin write end: never used, only kept open until the monitor exits
 *
 * Exit status: 0 when the exit file was written; 1 when pidfd_open, poll or waitid failed or
 * the exit file could not be written; 2 on bad arguments.
 *
 * No libc: raw system calls (x86_64 and aarch64), a tiny _start, no allocation. It stays
 * valid C and C++. Built by src/runtime/monitor-binary.ts and scripts/build-monitor.mjs.
 */

#include "sys.h"

enum { OUT_FD = 3, ERR_FD = 4, LOG_FD = 5 };
enum { HEADER = 13, TRAILER = 4, CHUNK = 65536, GRACE_NS = 2000000000, EXIT_RESERVE = 4096 };

struct pollfd_k { int fd; short events, revents; };

static u64 now_ns(int clock) {
  struct timespec_k t;
  sys3(NR_clock_gettime, clock, &t, 0);
  return (u64)t.sec * 1000000000ull + (u64)t.nsec;
}

/* Header, data and trailer of one record, so that it goes to the log in one write(). */
static unsigned char rec[HEADER + CHUNK + TRAILER];

/* Rotation: the log's path (0: none), its limits, the current file's size, and which streams
 * ended mid-line (bit 0 stdout, bit 1 stderr). */
static const char *log_path;
static u64 max_size, log_size;
static long max_file;
static int mid_line;
static char name_a[4096 + 32], name_b[4096 + 32];

/* Writes the name of the log's i-th file (0: <log-path>, else <log-path>.i) to buf. */
static const char *rotated_name(char *buf, long i) {
  char *p = put_str(buf, log_path);
  if (i > 0) p = put_num(put_str(p, "."), i);
  *p = 0;
  return buf;
}

/* Fills in a record's header and trailer around `n` bytes of data at rec + HEADER. */
static long frame(int kind, u64 t, long n) {
  rec[0] = (unsigned char)kind;
  for (int i = 0; i < 8; i++) rec[1 + i] = (unsigned char)(t >> (8 * i));
  for (int i = 0; i < 4; i++) rec[9 + i] = rec[HEADER + n + i] = (unsigned char)((u64)n >> (8 * i));
  return HEADER + n + TRAILER;
}

/*
 * Appends rec[0, len) to the log, looping on short writes. On an error (ENOSPC, EIO, ...) the
 * record is dropped: a partly written one is cut off again so the log stays a sequence of whole
 * records. The container must never stall on its log.
 */
static int write_record(const unsigned char *r, long len) {
  long off = 0;
  while (off < len) {
    long n = sys3(NR_write, LOG_FD, r + off, len - off);
    if (n == -EINTR) continue;
    if (n <= 0) {
      if (off > 0) {
        long end = sys3(NR_lseek, LOG_FD, 0, SEEK_END);
        if (end >= off) sys3(NR_ftruncate, LOG_FD, end - off, 0);
      }
      return 0;
    }
    off += n;
  }
  log_size += (u64)len;
  return 1;
}

/* A boundary record (kind 0x83) of time `t` saying which streams are mid-line (`bits`). */
static unsigned char boundary[HEADER + 1 + TRAILER];
static const unsigned char *boundary_record(u64 t, int bits) {
  boundary[0] = 0x83;
  for (int i = 0; i < 8; i++) boundary[1 + i] = (unsigned char)(t >> (8 * i));
  for (int i = 0; i < 4; i++) boundary[9 + i] = boundary[HEADER + 1 + i] = (unsigned char)(i == 0);
  boundary[HEADER] = (unsigned char)bits;
  return boundary;
}

/* Opens a new <log-path> on LOG_FD and starts it with a boundary record; keeps the current file on failure. */
static void start_file(u64 t) {
  long fd = sys6(NR_openat, AT_FDCWD, (long)log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640, 0, 0);
  if (fd < 0) return;
  long moved = sys3(NR_dup3, fd, LOG_FD, 0);
  sys3(NR_close, fd, 0, 0);
  if (moved < 0) return;
  long end = sys3(NR_lseek, LOG_FD, 0, SEEK_END);
  log_size = end > 0 ? (u64)end : 0;
  write_record(boundary_record(t, mid_line), HEADER + 1 + TRAILER);
}

/*
 * Shifts the log's files by one and starts a new one on LOG_FD. On any failure the current file
 * is kept (output is never lost for a rotation that did not happen).
 */
static void rotate(u64 t) {
  if (max_file <= 1) {
    long r = sys3(NR_unlinkat, AT_FDCWD, (long)log_path, 0);
    if (r < 0 && r != -ENOENT) return;
  } else {
    for (long i = max_file - 1; i >= 1; i--) {
      long r = sys6(NR_renameat2, AT_FDCWD, (long)rotated_name(name_a, i - 1), AT_FDCWD, (long)rotated_name(name_b, i), 0, 0);
      if (r < 0 && r != -ENOENT) return;
    }
  }
  start_file(t);
}

#include "logcap.h"

/*
 * Reads one chunk from `fd` and logs it as a record of `stream`. Returns 1 when data was logged,
 * 2 when nothing is there yet, -1 at EIO (a pty master whose slave side is closed), and 0 once
 * the source is finished otherwise (end of file or any other error).
 */
static int pump(int fd, int stream) {
  long n = sys3(NR_read, fd, rec + HEADER, CHUNK);
  if (n == -EINTR || n == -EAGAIN) return 2;
  if (n == -EIO) return -1;
  if (n <= 0) return 0;
  u64 t = now_ns(CLOCK_REALTIME);
  if (max_output && !keep_tail) {
    u64 kept = mon_head_kept(counted[stream], (u64)n, max_output);
    if (kept < (u64)n) cut |= stream;
    if (kept == 0) return 1;
    n = (long)kept;
  }
  long len = frame(0x80 | stream, t, n);
  if (max_output && keep_tail) {
    if (mon_tail_rotates(counted[stream], (u64)n, max_output)) rotate_tail(t, stream);
  } else if (log_path && log_size > 0 && log_size + (u64)len > max_size) rotate(t);
  counted[stream] += (u64)n;
  if (write_record(rec, len)) {
    if (rec[HEADER + n - 1] == '\n') mid_line &= ~stream;
    else mid_line |= stream;
  }
  return 1;
}

/* Parses a decimal number below 2^62 (0 included); returns -1 if `s` is anything else. */
static long long parse_number(const char *s) {
  long long v = 0;
  if (*s == 0) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 0x3fffffffffffffffll / 10) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

/* Parses a positive decimal number below 2^62; returns -1 if `s` is anything else. */
static long long parse_positive(const char *s) {
  long long v = parse_number(s);
  return v > 0 ? v : -1;
}

/* <exit-path>.tmp-<own pid>, and its fd once reserve_exit_file made it (else -1). */
static char exit_tmp[4096 + 32];
static long exit_fd = -1;
static char spaces[EXIT_RESERVE];

/* Makes <exit-path>.tmp-<own pid> with EXIT_RESERVE bytes, kept open; best effort. */
static void reserve_exit_file(const char *path) {
  long n = 0;
  while (path[n]) n++;
  if (n > 4096) return;
  *put_num(put_str(put_str(exit_tmp, path), ".tmp-"), sys3(NR_getpid, 0, 0, 0)) = 0;
  long fd = sys6(NR_openat, AT_FDCWD, (long)exit_tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644, 0, 0);
  if (fd < 0) return;
  for (int i = 0; i < EXIT_RESERVE; i++) spaces[i] = ' ';
  long off = 0;
  while (off < EXIT_RESERVE) {
    long w = sys3(NR_write, fd, spaces + off, EXIT_RESERVE - off);
    if (w == -EINTR) continue;
    if (w <= 0) break;
    off += w;
  }
  exit_fd = fd;
}

/* Writes the exit record to <exit-path>.tmp-<own pid> (into its reserved bytes), then renames it over <exit-path>. */
static int write_exit_file(const char *path, long pid, long code, long sig, u64 finished_ms, int timed_out) {
  char json[240], *p = json;
  long n = 0;
  while (path[n]) n++;
  if (n > 4096) return -1;
  char *t = put_num(put_str(put_str(exit_tmp, path), ".tmp-"), sys3(NR_getpid, 0, 0, 0));
  *t = 0;

  p = put_num(put_str(p, "{\"pid\":"), pid);
  p = put_num(put_str(p, ",\"exitCode\":"), code);
  if (sig > 0) p = put_num(put_str(p, ",\"signal\":"), sig);
  p = put_num(put_str(p, ",\"finishedAt\":"), (long long)finished_ms);
  if (timed_out) p = put_str(p, ",\"timedOut\":true");
  if (cut) {
    p = put_str(p, ",\"outputTruncated\":{");
    if (cut & 1) p = put_str(p, cut & 2 ? "\"stdout\":true," : "\"stdout\":true");
    if (cut & 2) p = put_str(p, "\"stderr\":true");
    p = put_str(p, "}");
  }
  p = put_str(p, "}");

  long fd = exit_fd;
  if (fd >= 0) sys3(NR_lseek, fd, 0, 0 /* SEEK_SET */);
  else fd = sys6(NR_openat, AT_FDCWD, (long)exit_tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644, 0, 0);
  if (fd < 0) return -1;
  long off = 0, len = p - json;
  while (off < len) {
    long w = sys3(NR_write, fd, json + off, len - off);
    if (w == -EINTR) continue;
    if (w <= 0) break;
    off += w;
  }
  if (off == len && sys3(NR_ftruncate, fd, len, 0) < 0) off = -1;
  sys3(NR_close, fd, 0, 0);
  if (off < len || sys6(NR_renameat2, AT_FDCWD, (long)exit_tmp, AT_FDCWD, (long)path, 0, 0) < 0) return -1;
  return 0;
}

#ifdef __cplusplus
extern "C"
#endif
__attribute__((noreturn, used)) void monitor_main(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  if (argc != 3 && argc != 6 && argc != 9) exit_now(2);
  long long child = parse_positive(argv[1]);
  const char *exit_path = argv[2];
  if (child < 0 || child > 0x3fffffff || exit_path[0] == 0) exit_now(2);
  u64 time_limit_ns = 0;
  if (argc == 9) {
    long long cap = parse_number(argv[6]), ms = parse_number(argv[8]);
    const char *keep = argv[7];
    int tail = keep[0] == 't' && keep[1] == 'a' && keep[2] == 'i' && keep[3] == 'l' && keep[4] == 0;
    int head = keep[0] == 'h' && keep[1] == 'e' && keep[2] == 'a' && keep[3] == 'd' && keep[4] == 0;
    if (cap < 0 || ms < 0 || ms > 0x7fffffffll * 1000 || !(tail || head)) exit_now(2);
    max_output = (u64)cap, keep_tail = tail;
    time_limit_ns = (u64)ms * 1000000ull;
  }
  if (argc >= 6) {
    long long size = parse_positive(argv[4]), files = parse_positive(argv[5]);
    long n = 0;
    while (argv[3][n]) n++;
    if (n == 0 || n > 4096 || size < 0 || files < 0 || files > 100000) exit_now(2);
    log_path = argv[3], max_size = (u64)size, max_file = (long)files;
    long end = sys3(NR_lseek, LOG_FD, 0, SEEK_END);
    log_size = end > 0 ? (u64)end : 0;
  }

  /* Keep running when the terminal or a reader goes away; reap the child ourselves
   * (SIGCHLD may have been inherited as ignored, which would auto-reap it). */
  static const int ignored[] = {1 /* HUP */, 2 /* INT */, 3 /* QUIT */, 13 /* PIPE */, 21 /* TTIN */, 22 /* TTOU */};
  struct sigaction_k act = {1 /* SIG_IGN */, 0, 0, 0};
  for (unsigned i = 0; i < sizeof ignored / sizeof ignored[0]; i++) sys6(NR_rt_sigaction, ignored[i], (long)&act, 0, 8, 0, 0);
  act.handler = 0; /* SIG_DFL */
  sys6(NR_rt_sigaction, SIGCHLD, (long)&act, 0, 8, 0, 0);

  /* pfd[0], pfd[1]: the sources (fd -1 once finished, or when not open); pfd[2]: the child. */
  struct pollfd_k pfd[3] = {{OUT_FD, POLLIN, 0}, {ERR_FD, POLLIN, 0}, {-1, POLLIN, 0}};
  for (int i = 0; i < 2; i++) {
    long fl = sys3(NR_fcntl, pfd[i].fd, F_GETFL, 0);
    if (fl < 0) pfd[i].fd = -1; /* EBADF: not open */
    else sys3(NR_fcntl, pfd[i].fd, F_SETFL, fl | O_NONBLOCK);
  }
  long pidfd = sys3(NR_pidfd_open, child, 0, 0);
  if (pidfd < 0) exit_now(1);
  pfd[2].fd = (int)pidfd;
  /* After the sources are checked: its fd must not pass for a source that is not open. */
  reserve_exit_file(exit_path);

  /* The run time limit: the monitor starts right after the program's execve. */
  u64 kill_at = time_limit_ns ? now_ns(CLOCK_MONOTONIC) + time_limit_ns : 0;
  int exited = 0, timed_out = 0;
  /* A terminal's master that read EIO: read once more after the exit, since the kernel can
   * report EIO while the last output is still on its way to the master. */
  int hung_up = -1;
  long code = 0, sig = 0;
  u64 finished_ms = 0, deadline = 0;
  while (!exited || pfd[0].fd >= 0 || pfd[1].fd >= 0) {
    /* After the exit, drain for at most GRACE_NS: a grandchild may hold a pipe open. */
    struct timespec_k timeout = {0, 0}, *tp = 0;
    /* Before the exit, wake up at the run time limit (once: the kill is sent then). */
    u64 wake = exited ? deadline : kill_at;
    if (wake) {
      u64 now = now_ns(CLOCK_MONOTONIC);
      if (exited && now >= deadline) break;
      if (!exited && now >= kill_at) {
        /* SIGKILL to PID 1 of the container's PID namespace ends every process in it. */
        long k = sys6(NR_pidfd_send_signal, pidfd, SIGKILL, 0, 0, 0, 0);
        if (k < 0 && k != -ESRCH) exit_now(1);
        timed_out = k == 0;
        kill_at = 0;
        continue;
      }
      timeout.sec = (long)((wake - now) / 1000000000ull);
      timeout.nsec = (long)((wake - now) % 1000000000ull);
      tp = &timeout;
    }
    long r = sys6(NR_ppoll, (long)pfd, 3, (long)tp, 0, 8, 0);
    if (r < 0 && r != -EINTR) exit_now(1);
    if (r <= 0) continue;

    for (int i = 0; i < 2; i++) {
      if (pfd[i].fd < 0 || pfd[i].revents == 0) continue;
      /* Readable, hung up or in error: read tells which. POLLNVAL makes read fail too. */
      int got = pump(pfd[i].fd, i + 1);
      if (got == -1 && hung_up < 0) hung_up = pfd[i].fd;
      else if (got <= 0) sys3(NR_close, pfd[i].fd, 0, 0);
      if (got <= 0) pfd[i].fd = -1;
    }

    if (pfd[2].fd >= 0 && pfd[2].revents != 0) {
      /* siginfo_t: si_code at byte 8, si_status at byte 24 (64-bit layout). */
      int info[32];
      long w;
      do w = sys6(NR_waitid, P_PIDFD, pidfd, (long)info, WEXITED, 0, 0);
      while (w == -EINTR);
      if (w < 0) exit_now(1);
      finished_ms = now_ns(CLOCK_REALTIME) / 1000000ull;
      deadline = now_ns(CLOCK_MONOTONIC) + GRACE_NS;
      if (info[2] == CLD_EXITED) code = info[6];
      else if (info[2] == CLD_KILLED || info[2] == CLD_DUMPED) sig = info[6], code = 128 + sig;
      /* It ended by itself while the kill was on its way. */
      if (sig != SIGKILL) timed_out = 0;
      sys3(NR_close, pidfd, 0, 0);
      pfd[2].fd = -1;
      exited = 1;
    }
  }

  if (hung_up >= 0)
    while (pump(hung_up, 1) == 1) {
    }
  exit_now(write_exit_file(exit_path, child, code, sig, finished_ms, timed_out) == 0 ? 0 : 1);
}

BERTH_START(monitor_main)
