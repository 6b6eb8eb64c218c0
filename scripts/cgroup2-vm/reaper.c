/*
 * The cgroup2 guest's reaper: runs a command as a child subreaper, so processes orphaned under it
 * (detached containers' monitors, their inits) are reaped as on a real system, and exits with the
 * command's status. The guest's PID 1 is a shell, which reaps only its own children.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: reaper command [args...]\n");
    return 2;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    perror("reaper: PR_SET_CHILD_SUBREAPER");
    return 125;
  }
  pid_t child = fork();
  if (child < 0) {
    perror("reaper: fork");
    return 125;
  }
  if (child == 0) {
    execvp(argv[1], argv + 1);
    perror("reaper: exec");
    _exit(127);
  }
  int code = 125;
  for (;;) {
    int status;
    pid_t pid = wait(&status);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break; /* ECHILD: nothing left */
    }
    if (pid == child) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break; /* what is left behind dies with the guest */
    }
  }
  return code;
}
