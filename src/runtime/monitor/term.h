/*
 * The program's stdio, as berth-init and berth-exec set it up (setUpStdio in init.ts): fds 0-2
 * from the pipes the zygote passed, or a new terminal made inside the container (on its devpts
 * instance, so the program's terminal is /dev/pts/N there) whose master is handed over to the
 * zygote, which holds it outside the container.
 */
#ifndef BERTH_TERM_H
#define BERTH_TERM_H
#include "failure.h"

enum { TIOCSPTLCK = 0x40045431, TIOCGPTPEER = 0x5441, TIOCSWINSZ = 0x5414, TIOCSCTTY = 0x540e };

/* Makes `fd` available as `target`, without close-on-exec (dup3 refuses equal fds). */
static void place(long fd, int target) {
  if (fd == target) must(sys3(NR_fcntl, fd, F_SETFD, 0), "fcntl", 0);
  else must(sys3(NR_dup3, fd, target, 0), "dup3", 0);
}

/* Fds 0-2 from the pipes: STDIN_FD (/dev/null when it is not open), STDOUT_FD, STDERR_FD. */
static void wire_pipes(void) {
  long in = STDIN_FD;
  if (sys3(NR_fcntl, STDIN_FD, F_GETFL, 0) < 0) in = must(sys6(NR_openat, AT_FDCWD, (long)"/dev/null", O_RDONLY | O_CLOEXEC, 0, 0, 0), "open", "/dev/null");
  place(in, 0);
  if (in != STDIN_FD) sys3(NR_close, in, 0, 0);
  place(STDOUT_FD, 1);
  place(STDERR_FD, 2);
}

/*
 * A new terminal on the container's /dev/pts/ptmx: returns its master; `*slave` is its other
 * end, owned by `owner` (as a login would make it; group unchanged), `rows` × `cols` in size.
 */
static long open_terminal(long owner, long rows, long cols, long *slave) {
  long master = must(sys6(NR_openat, AT_FDCWD, (long)"/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0, 0, 0), "open", "/dev/pts/ptmx");
  int unlock = 0;
  must(sys3(NR_ioctl, master, TIOCSPTLCK, &unlock), "ioctl", "TIOCSPTLCK");
  *slave = must(sys3(NR_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC), "ioctl", "TIOCGPTPEER");
  must(sys3(NR_fchown, *slave, owner, -1), "fchown", 0);
  unsigned short ws[4] = {(unsigned short)rows, (unsigned short)cols, 0, 0};
  must(sys3(NR_ioctl, *slave, TIOCSWINSZ, ws), "ioctl", "TIOCSWINSZ");
  return master;
}

/*
 * Makes `slave` fds 0-2 and the controlling terminal (this process leads its session: setsid at
 * the start), then hands `master` over: "\x02<master fd>\n" on the error pipe (TERMINAL_MARKER in
 * init.ts), and once the zygote has taken it (pidfd_getfd), its one byte on the control pipe;
 * then closes this process's copy.
 */
static void hand_over_terminal(long master, long slave) {
  for (int fd = 0; fd < 3; fd++) place(slave, fd);
  if (slave > 2) sys3(NR_close, slave, 0, 0);
  must(sys3(NR_ioctl, 0, TIOCSCTTY, 0), "ioctl", "TIOCSCTTY");
  char line[32], *p = line;
  *p++ = 2;
  p = put_num(p, master);
  *p++ = '\n';
  sys3(NR_write, ERROR_FD, line, p - line);
  char ack;
  int got = read_exactly(CTRL_FD, &ack, 1);
  sys3(NR_close, master, 0, 0);
  if (!got) fail_other("the runtime did not take the terminal", "", "");
}

#endif
