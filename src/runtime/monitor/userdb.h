/*
 * The user of the container's program, from the container's /etc/passwd and /etc/group, resolved
 * as src/runtime/user.ts does (resolveUserFrom): its uid, gid, supplementary groups and home.
 */
#ifndef BERTH_USERDB_H
#define BERTH_USERDB_H
#include "arena.h"

/*
 * The whole file, NUL-terminated; 0 when it cannot be read (then it counts as empty). Only a
 * regular file is read: an image may make /etc/passwd a FIFO (an open or read that never
 * returns) or a link to /dev/zero (a read that never ends). As user.ts does.
 */
static char *read_file(const char *path) {
  long fd = sys6(NR_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0, 0, 0);
  if (fd < 0) return 0;
  struct statx_k st;
  if (sys6(NR_statx, fd, (long)"", AT_EMPTY_PATH, STATX_TYPE, (long)&st, 0) != 0 || (st.mode & S_IFMT) != S_IFREG) {
    sys3(NR_close, fd, 0, 0);
    return 0;
  }
  unsigned long cap = 65536, n = 0;
  char *buf = (char *)alloc(cap + 1);
  for (;;) {
    if (n == cap) {
      if (cap >= (64ul << 20)) break;
      char *bigger = (char *)alloc(2 * cap + 1);
      memcpy(bigger, buf, n);
      buf = bigger, cap *= 2;
    }
    long got = retry(NR_read, fd, (long)(buf + n), (long)(cap - n));
    if (got < 0) {
      sys3(NR_close, fd, 0, 0);
      return 0;
    }
    if (got == 0) break;
    n += (unsigned long)got;
  }
  sys3(NR_close, fd, 0, 0);
  buf[n] = 0;
  return buf;
}

enum { MAX_FIELDS = 8 };
/* One line split at ':' (the line is cut in place); returns the number of fields. */
static int split_line(char *line, char **f) {
  int n = 0;
  f[n++] = line;
  for (char *p = line; *p; p++)
    if (*p == ':') {
      *p = 0;
      if (n < MAX_FIELDS) f[n++] = p + 1;
      else n++;
    }
  return n;
}

/* Walks the lines of `text`, skipping empty ones and comments: the next one, cut in place, or 0. */
static char *next_line(char **text) {
  while (*text && **text) {
    char *line = *text, *p = line;
    while (*p && *p != '\n') p++;
    if (*p) *p++ = 0;
    *text = p;
    if (*line && *line != '#') return line;
  }
  return 0;
}

/*
 * An id as JavaScript's Number() reads a field: blanks around it ignored, empty is 0. Only
 * decimal digits are taken (anything else: -1, matching no id); large values saturate.
 */
static long long js_id(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  long long v = 0;
  for (; *s >= '0' && *s <= '9'; s++) v = v > (1ll << 40) ? v : v * 10 + (*s - '0');
  while (*s == ' ' || *s == '\t' || *s == '\r') s++;
  return *s ? -1 : v;
}

static int all_digits(const char *s, unsigned long n) {
  if (n == 0) return 0;
  for (unsigned long i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static int same(const char *a, const char *b, unsigned long n) {
  for (unsigned long i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return !b[n];
}

struct user { long long uid, gid; unsigned *groups; int n_groups; const char *home; };

static char *copy_n(const char *s, unsigned long n) {
  char *c = (char *)alloc(n + 1);
  memcpy(c, s, n);
  c[n] = 0;
  return c;
}

/* A numeric id of a user string; beyond 12 digits it is out of range anyway. */
static long long spec_id(const char *s) {
  return len(s) > 12 ? 1ll << 40 : js_id(s);
}

/* resolveUserFrom in user.ts: `user[:group]`, names or ids; errors are "user" failures. */
static void resolve_user(const char *spec, struct user *u) {
  const char *colon = spec;
  while (*colon && *colon != ':') colon++;
  char *user_part = copy_n(spec, (unsigned long)(colon - spec));
  int has_group = *colon == ':';
  char *group_part = 0;
  if (has_group) {
    const char *g = colon + 1, *e = g;
    while (*e && *e != ':') e++;
    group_part = copy_n(g, (unsigned long)(e - g));
  }
  char *text = read_file("/etc/passwd");
  char *f[MAX_FIELDS];
  const char *name = 0;
  u->uid = 0, u->gid = 0, u->home = "/", u->n_groups = 0, u->groups = 0;
  if (!*user_part) {
    for (char *line; (line = next_line(&text));)
      if (split_line(line, f) >= 7 && js_id(f[2]) == 0) {
        u->home = f[5], name = f[0];
        break;
      }
  } else if (all_digits(user_part, len(user_part))) {
    u->uid = spec_id(user_part);
    for (char *line; (line = next_line(&text));)
      if (split_line(line, f) >= 7 && js_id(f[2]) == u->uid) {
        u->gid = js_id(f[3]), u->home = f[5], name = f[0];
        break;
      }
  } else {
    for (char *line; (line = next_line(&text));)
      if (split_line(line, f) >= 7 && eq(f[0], user_part)) {
        u->uid = js_id(f[2]), u->gid = js_id(f[3]), u->home = f[5], name = f[0];
        break;
      }
    if (!name) fail("user", cat(msg, sizeof msg, "unable to find user ", user_part, ": no matching entries in passwd file", 0), 0, 0, 1);
  }
  if (group_part && *group_part) {
    if (all_digits(group_part, len(group_part))) u->gid = spec_id(group_part);
    else {
      int found = 0;
      text = read_file("/etc/group");
      for (char *line; (line = next_line(&text));)
        if (split_line(line, f) >= 3 && eq(f[0], group_part)) {
          u->gid = js_id(f[2]), found = 1;
          break;
        }
      if (!found) fail("user", cat(msg, sizeof msg, "unable to find group ", group_part, ": no matching entries in group file", 0), 0, 0, 1);
    }
  }
  /* An id field that is no number at all (js_id: -1) is refused too, rather than taken for 0. */
  if (u->uid < 0 || u->gid < 0 || u->uid > 0xfffffffell || u->gid > 0xfffffffell)
    fail("user", cat(msg, sizeof msg, "user ", spec, ": id out of range", 0), 0, 0, 1);
  if (!*u->home) u->home = "/";
  if (!name || has_group) return;
  /* Supplementary groups, as initgroups(3): the primary group, then every group listing the user. */
  text = read_file("/etc/group");
  unsigned long max = 1;
  for (const char *p = text; p && *p; p++) max += *p == '\n';
  u->groups = (unsigned *)alloc(sizeof(unsigned) * (max + 1));
  u->groups[u->n_groups++] = (unsigned)u->gid;
  for (char *line; (line = next_line(&text));) {
    if (split_line(line, f) < 4) continue;
    long long gid = js_id(f[2]);
    int member = 0;
    for (char *m = f[3]; *m && !member;) {
      char *e = m;
      while (*e && *e != ',') e++;
      member = e > m && same(m, name, (unsigned long)(e - m));
      m = *e ? e + 1 : e;
    }
    if (!member || gid < 0 || gid > 0xfffffffell) continue;
    int dup = 0;
    for (int k = 0; k < u->n_groups; k++) dup |= u->groups[k] == (unsigned)gid;
    if (!dup) u->groups[u->n_groups++] = (unsigned)gid;
  }
}

#endif
