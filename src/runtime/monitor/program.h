/*
 * The last step of berth-init and berth-exec: execvp(3)'s search for the program in the
 * container's PATH, the exec marker on the error pipe, and execve (execProgram in init.ts).
 */
#ifndef BERTH_PROGRAM_H
#define BERTH_PROGRAM_H
#include "failure.h"

/*
 * Whether `path` is a program this process may run (`executable` in init-sys.ts): 0 yes; 1 it is
 * there but is no executable regular file, or cannot be reached; 2 it is missing.
 */
static int program_at(const char *path) {
  struct statx_k st;
  long r = sys6(NR_statx, AT_FDCWD, (long)path, 0, STATX_TYPE | STATX_MODE, (long)&st, 0);
  if (r < 0) return r == -ENOENT || r == -ENOTDIR || r == -ELOOP || r == -ENAMETOOLONG ? 2 : 1;
  if ((st.mode & S_IFMT) != S_IFREG) return 1;
  return sys3(NR_faccessat, AT_FDCWD, path, X_OK) < 0 ? 1 : 0;
}

/*
 * execvp(3)'s search for `file` (execProgram in init.ts): `file` itself when it holds a slash,
 * else in each directory of the first `PATH=` of `env` (the default PATH without one). Returns
 * the program's path (`file`, or `buf` of `size` bytes), or 0; `*denied` tells that a candidate
 * was there but could not be run.
 */
static const char *find_program(const char *file, char **env, char *buf, unsigned long size, int *denied) {
  *denied = 0;
  for (const char *s = file; *s; s++)
    if (*s == '/') {
      int r = program_at(file);
      *denied = r == 1;
      return r == 0 ? file : 0;
    }
  const char *dirs = 0;
  for (char **e = env; *e && !dirs; e++) {
    const char *v = *e;
    if (v[0] == 'P' && v[1] == 'A' && v[2] == 'T' && v[3] == 'H' && v[4] == '=') dirs = v + 5;
  }
  if (!dirs) dirs = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const char *d = dirs;; d++) {
    char *p = buf, *lim = buf + size - 2;
    const char *start = d;
    while (*d && *d != ':' && p < lim) *p++ = *d++;
    if (d == start) *p++ = '.';
    *p++ = '/';
    for (const char *f = file; *f && p < lim; f++) *p++ = *f;
    *p = 0;
    int r = program_at(buf);
    if (r == 0) return buf;
    if (r == 1) *denied = 1;
    if (!*d) return 0;
  }
}

static char candidate[4096 + 256];

/*
 * Looks `args[0]` up (the search done before the marker, see init.ts), writes the exec marker
 * ("\x01") on the error pipe and execs it with `env`. A program that is not there or cannot be
 * run is a command failure (126 or 127), as an execve failing with ENOEXEC or EACCES; any other
 * error of execve is returned (-errno) for the caller to report.
 */
static long exec_program(char **args, char **env) {
  const char *file = args[0];
  int denied, slash = 0;
  for (const char *s = file; *s; s++) slash |= *s == '/';
  const char *path = find_program(file, env, candidate, sizeof candidate, &denied);
  if (!path && denied) command_failure(126, "exec: \"", file, "\": permission denied", "", "");
  if (!path && slash) command_failure(127, "exec: \"", file, "\": stat ", file, ": no such file or directory");
  if (!path) command_failure(127, "exec: \"", file, "\": executable file not found in $PATH", "", "");
  sys3(NR_write, ERROR_FD, "\1", 1);
  long r = sys3(NR_execve, path, args, env);
  if (r == -ENOEXEC) command_failure(126, "exec: \"", file, "\": exec format error", "", "");
  if (r == -EACCES) command_failure(126, "exec: \"", file, "\": permission denied", "", "");
  return r;
}

#endif
