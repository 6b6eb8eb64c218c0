/*
 * How berth-init and berth-exec fail: the fds they get from the zygote, the step under way, and
 * a failure written as JSON on the error pipe (the `InitFailure` of init.ts), after which the
 * process exits:
 *   {"step":S,"message":M,"kind":K[,"syscall":C,"errno":N],"exitCode":X}
 * A kernel failure's message is "<step>: <syscall>(<what>) failed" (must below): the zygote adds
 * the errno's name, as init.ts's failureOf words a KernelError.
 */
#ifndef BERTH_FAILURE_H
#define BERTH_FAILURE_H
#include "sys.h"

/*
 * File descriptors at start (see init.c and exec.c for what each program gets on them):
 *   3  the error pipe: a failure report, the terminal's master, the exec marker
 *   4  the control pipe (read end): the zygote's bytes (the plan, acks)
 *   5  stdin, or not open (then /dev/null inside the container)
 *   6  stdout, 7 stderr (unused with a terminal)
 */
enum { ERROR_FD = 3, CTRL_FD = 4, STDIN_FD = 5, STDOUT_FD = 6, STDERR_FD = 7 };

/*
 * Writes a start failure on `fd` as the JSON the zygote reads (`InitFailure` in init.ts, with the
 * errno as a number): {"step","message","kind"[,"syscall","errno"],"exitCode"}, the message being
 * the `n` strings of `parts` joined; then exits with `code`.
 */
static __attribute__((noreturn)) void report_failure(int fd, const char *step, const char *const *parts, int n, const char *kind,
                                                     const char *syscall, long err, int code) {
  static char report[16384];
  char *end = report + sizeof report, *p = report;
  p = put_json(put_str(p, "{\"step\":\""), step, end);
  p = put_str(p, "\",\"message\":\"");
  for (int k = 0; k < n; k++) p = put_json(p, parts[k], end);
  p = put_json(put_str(p, "\",\"kind\":\""), kind, end);
  if (syscall) p = put_num(put_str(put_json(put_str(p, "\",\"syscall\":\""), syscall, end), "\",\"errno\":"), err);
  else p = put_str(p, "\"");
  p = put_str(put_num(put_str(p, ",\"exitCode\":"), code), "}");
  sys3(NR_write, fd, report, p - report);
  exit_now(code);
}

/* The step under way, as the failure report names it (see set_step). */
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

/* Names the step under way: `a`, or `a` and `b` joined ("bind " and its target). */
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

/* A failure of the program to run ("command": exit code 126 or 127), its message the five strings joined. */
static __attribute__((noreturn)) void command_failure(int code, const char *a, const char *b, const char *c, const char *d, const char *e) {
  const char *parts[5] = {a, b, c, d, e};
  report_failure(ERROR_FD, step, parts, 5, "command", 0, 0, code);
}

#endif
