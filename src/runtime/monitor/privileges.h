/*
 * The privilege drop of the container's program, the last step of berth-init and berth-exec
 * before the exec (dropPrivileges in init.ts, in runc's order).
 */
#ifndef BERTH_PRIVILEGES_H
#define BERTH_PRIVILEGES_H
#include "failure.h"

/*
 * Sets the permitted and effective capability sets to `keep` and empties the inheritable one
 * (and with it the ambient one), for any uid: nothing is left for a program to inherit through
 * file capabilities (CVE-2022-24769; Docker and runc set no inheritable capability). 0 or -errno.
 */
static long set_capabilities(u64 keep) {
  unsigned header[2] = {_LINUX_CAPABILITY_VERSION_3, 0};
  unsigned data[6] = {(unsigned)keep, (unsigned)keep, 0, (unsigned)(keep >> 32), (unsigned)(keep >> 32), 0};
  return sys3(NR_capset, header, data, 0);
}

/*
 * The bounding set dropped to `caps`, no ambient capabilities, the supplementary `groups`, the gid
 * and uid, then exactly `caps` permitted and effective for root (none for another uid; none
 * inheritable for any), and no_new_privs with `nnp`.
 */
static void drop_privileges(u64 caps, const unsigned *groups, int n_groups, long long uid, long long gid, int nnp) {
  for (int cap = 0; cap < 64; cap++) {
    if (caps & (1ull << cap)) continue;
    long r = sys3(NR_prctl, PR_CAPBSET_DROP, cap, 0);
    if (r != -EINVAL) must(r, "prctl", "PR_CAPBSET_DROP"); /* EINVAL: beyond the kernel's last capability */
  }
  must(sys6(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0), "prctl", "PR_CAP_AMBIENT");
  must(sys3(NR_setgroups, n_groups, groups, 0), "setgroups", 0);
  must(sys3(NR_setresgid, gid, gid, gid), "setresgid", 0);
  must(sys3(NR_setresuid, uid, uid, uid), "setresuid", 0);
  /* A non-zero uid lost every capability in setresuid; root keeps exactly the mask. */
  must(set_capabilities(uid == 0 ? caps : 0), "capset", 0);
  if (nnp) must(sys6(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0), "prctl", "PR_SET_NO_NEW_PRIVS");
}

#endif
