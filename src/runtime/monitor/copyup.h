/*
 * Docker's volume copy-up (copy-up.ts): a volume mounted over a directory of the image is filled
 * with that directory's content on first use, crash-safe and race-free (see copy_up below).
 * Iterative: any depth is copied and removed with no recursion and a fixed number of fds.
 */
#ifndef BERTH_COPYUP_H
#define BERTH_COPYUP_H
#include "arena.h"

struct dirent64_k { u64 ino; long long off; unsigned short reclen; unsigned char type; char name[]; };
struct statx_ts { long long sec; unsigned nsec; int reserved; };
/* statx(2)'s result, with the times and the device (struct statx of <linux/stat.h>). */
struct statx_full {
  unsigned mask, blksize; u64 attributes; unsigned nlink, uid, gid; unsigned short mode, spare0;
  u64 ino, size, blocks, attributes_mask; struct statx_ts atime, btime, ctime, mtime;
  unsigned rdev_major, rdev_minor, dev_major, dev_minor; char rest[256 - 144];
};
enum { S_IFLNK = 0120000, STATX_BASIC_STATS = 0x7ff, SEEK_SET = 0 };
static char copy_buf[65536];
static char copy_dents[4096];
static char copy_link[4097];

/* Owner, mode (not of a symlink) and times of `name` in `dir`, from `st`, as copyTree sets them. */
static void copy_attributes(long dir, const char *name, const struct statx_full *st, int link) {
  must(sys6(NR_fchownat, dir, (long)name, st->uid, st->gid, AT_SYMLINK_NOFOLLOW, 0), "fchownat", name);
  if (!link) must(sys6(NR_fchmodat, dir, (long)name, st->mode & 07777, 0, 0, 0), "fchmodat", name);
  struct timespec_k times[2] = {{(long)st->atime.sec, st->atime.nsec}, {(long)st->mtime.sec, st->mtime.nsec}};
  must(sys6(NR_utimensat, dir, (long)name, (long)times, AT_SYMLINK_NOFOLLOW, 0, 0), "utimensat", name);
}

/* A directory: its device and inode. */
struct dir_id { u64 ino; unsigned major, minor; };

/*
 * A directory copy_tree is in, below the top: where the listing of the one above goes on once it
 * is done, which directories it copies from and to, and the owner, mode and times the copy gets
 * once its content is in (taken before it was read: reading may change its atime).
 */
struct copy_level {
  long long resume;
  struct dir_id from, to;
  unsigned uid, gid, mode;
  struct statx_ts atime, mtime;
};
/* The walk's levels, on the heap (alloc): copy_levels[1..depth] are in use. */
static struct copy_level *copy_levels;
static long copy_cap;

static struct dir_id id_of(long fd, const char *name) {
  struct statx_full st;
  must(sys6(NR_statx, fd, (long)"", AT_EMPTY_PATH, STATX_BASIC_STATS, (long)&st, 0), "statx", name);
  struct dir_id id = {st.ino, st.dev_major, st.dev_minor};
  return id;
}

/*
 * The directory above `fd`, opened through "..", checked to be `want`: one that was moved
 * meanwhile (by another container sharing the volume, say) fails the start, rather than having
 * the copy go on somewhere else.
 */
static long parent_of(long fd, const struct dir_id *want) {
  long up = must(sys6(NR_openat, fd, (long)"..", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0), "open", "..");
  struct dir_id got = id_of(up, "..");
  if (got.ino != want->ino || got.major != want->major || got.minor != want->minor)
    fail_other("copy-up: a directory was moved while it was copied", "", "");
  return up;
}

/*
 * Docker's volume copy-up (copyTree in copy-up.ts): copies the tree under the directory `from`
 * into the directory `to`, keeping owners, modes, symlinks (as links, never followed) and times;
 * devices, FIFOs and sockets are not copied. Every name is taken relative to an fd of its own
 * directory, opened without following a symlink.
 *
 * Any depth is copied whole, with no recursion and a fixed number of fds: the walk goes down
 * and up one directory at a time, with the fds of the current directory and of the top open
 * only. Going down, it notes where the listing above goes on (the entry's d_off) in a record
 * kept on the heap (copy_level, ~90 bytes a level); coming back up, it reopens the parent through
 * ".." (checked to be the same directory, see parent_of) and seeks its listing there. The top's
 * fds stay open, since the volume now covers the image's directory: ".." from a first-level
 * directory would land on the volume. A tree too deep for memory fails the start with mmap's
 * ENOMEM (a report, not a crash); the process stack does not grow with the depth.
 *
 * Time: each ".." in a volume (a bind mount of a subdirectory) costs the kernel a walk up to the
 * mount's root (path_connected), so very deep trees cost depth² — measured ~1 s for 10,000
 * levels, ~75 s for 50,000. An image layer cannot hold such a tree anyway: berth unpacks layers
 * by full paths, which PATH_MAX bounds to ~2000 levels.
 */
static void copy_tree(long from, long to) {
  long depth = 0, src = from, dst = to;
  for (;;) {
    long n = must(sys3(NR_getdents64, src, copy_dents, sizeof copy_dents), "getdents64", "copy-up");
    if (n == 0) {
      if (depth == 0) return;
      /* This directory's copy is complete: its owner, mode and times, as copy_attributes sets them. */
      struct copy_level *l = &copy_levels[depth];
      must(sys6(NR_fchownat, dst, (long)"", l->uid, l->gid, AT_EMPTY_PATH, 0), "fchownat", "copy-up");
      must(sys3(NR_fchmod, dst, l->mode & 07777, 0), "fchmod", "copy-up");
      struct timespec_k times[2] = {{(long)l->atime.sec, l->atime.nsec}, {(long)l->mtime.sec, l->mtime.nsec}};
      must(sys6(NR_utimensat, dst, 0, (long)times, 0, 0, 0), "utimensat", "copy-up");
      long up_src = depth == 1 ? from : parent_of(src, &copy_levels[depth - 1].from);
      long up_dst = depth == 1 ? to : parent_of(dst, &copy_levels[depth - 1].to);
      sys3(NR_close, src, 0, 0);
      sys3(NR_close, dst, 0, 0);
      src = up_src, dst = up_dst, depth--;
      must(sys3(NR_lseek, src, l->resume, SEEK_SET), "lseek", "copy-up");
      continue;
    }
    for (long off = 0; off < n;) {
      const struct dirent64_k *d = (const struct dirent64_k *)(copy_dents + off);
      off += d->reclen;
      const char *name = d->name;
      if (eq(name, ".") || eq(name, "..")) continue;
      struct statx_full st;
      must(sys6(NR_statx, src, (long)name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, (long)&st, 0), "statx", name);
      long type = st.mode & S_IFMT;
      if (type == S_IFDIR) {
        must(sys3(NR_mkdirat, dst, name, st.mode & 07777), "mkdir", name);
        long a = must(sys6(NR_openat, src, (long)name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", name);
        long b = must(sys6(NR_openat, dst, (long)name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", name);
        if (++depth >= copy_cap) {
          long cap = copy_cap ? 2 * copy_cap : 64;
          struct copy_level *bigger = (struct copy_level *)alloc(sizeof *bigger * (unsigned long)cap);
          for (long i = 0; i < copy_cap; i++) bigger[i] = copy_levels[i];
          copy_levels = bigger, copy_cap = cap;
        }
        struct copy_level *l = &copy_levels[depth];
        l->resume = d->off;
        l->from = id_of(a, name), l->to = id_of(b, name);
        l->uid = st.uid, l->gid = st.gid, l->mode = st.mode, l->atime = st.atime, l->mtime = st.mtime;
        if (depth > 1) sys3(NR_close, src, 0, 0), sys3(NR_close, dst, 0, 0);
        src = a, dst = b;
        break; /* into it; the rest of this listing is read again from l->resume */
      } else if (type == S_IFLNK) {
        long len_ = must(sys6(NR_readlinkat, src, (long)name, (long)copy_link, sizeof copy_link - 1, 0, 0), "readlink", name);
        copy_link[len_] = 0;
        must(sys3(NR_symlinkat, copy_link, dst, name), "symlink", name);
      } else if (type == S_IFREG) {
        long a = must(sys6(NR_openat, src, (long)name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", name);
        long b = must(sys6(NR_openat, dst, (long)name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, 0, 0), "open", name);
        for (;;) {
          long got = must(retry(NR_read, a, (long)copy_buf, sizeof copy_buf), "read", name);
          if (got == 0) break;
          for (long done = 0; done < got;) done += must(retry(NR_write, b, (long)(copy_buf + done), got - done), "write", name);
        }
        sys3(NR_close, a, 0, 0);
        sys3(NR_close, b, 0, 0);
      } else {
        continue; /* devices, FIFOs and sockets are not copied, as Docker does not */
      }
      copy_attributes(dst, name, &st, type == S_IFLNK);
    }
  }
}

enum { LOCK_EX = 2, AT_REMOVEDIR = 0x200, RENAME_NOREPLACE = 1, EISDIR = 21, ENOTEMPTY = 39 };

/* The names of copy-up's protocol on a volume's top (COPY_UP_STAGING and COPY_UP_COMPLETE in copy-up.ts). */
static const char COPY_UP_STAGING[] = ".berth-copy-up.staging";
static const char COPY_UP_COMPLETE[] = ".berth-copy-up.complete";

/*
 * Removes `name` in the directory `dir` and everything under it (removeTree in copy-up.ts): no
 * recursion and a fixed number of fds at any depth. It goes down into the first directory that
 * is not empty, removes what it can, and comes back up through ".." to list the parent again
 * from its start. Names are taken relative to an fd of their directory; nothing is followed.
 */
static void remove_tree(long dir, const char *name) {
  long r = sys6(NR_unlinkat, dir, (long)name, 0, 0, 0, 0);
  if (r == 0 || r == -ENOENT) return;
  if (r != -EISDIR) must(r, "unlink", name);
  /* Walks until the top can be removed: a listing that entries leave as it goes is not relied on to show every one. */
  while ((r = sys6(NR_unlinkat, dir, (long)name, AT_REMOVEDIR, 0, 0, 0)) == -ENOTEMPTY) {
    long cur = must(sys6(NR_openat, dir, (long)name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", name), depth = 0;
    for (;;) {
      long n = must(sys3(NR_getdents64, cur, copy_dents, sizeof copy_dents), "getdents64", name), below = -1;
      if (n == 0) {
        if (depth == 0) break;
        /* Everything listed here is gone: list the parent again, where this directory is now empty. */
        long up = must(sys6(NR_openat, cur, (long)"..", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0), "open", "..");
        sys3(NR_close, cur, 0, 0);
        cur = up, depth--;
        continue;
      }
      for (long off = 0; off < n && below < 0;) {
        const struct dirent64_k *d = (const struct dirent64_k *)(copy_dents + off);
        off += d->reclen;
        if (eq(d->name, ".") || eq(d->name, "..")) continue;
        r = sys6(NR_unlinkat, cur, (long)d->name, 0, 0, 0, 0);
        if (r == 0 || r == -ENOENT) continue;
        if (r != -EISDIR) must(r, "unlink", d->name);
        r = sys6(NR_unlinkat, cur, (long)d->name, AT_REMOVEDIR, 0, 0, 0);
        if (r == 0) continue;
        if (r != -ENOTEMPTY) must(r, "rmdir", d->name);
        below = must(sys6(NR_openat, cur, (long)d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", d->name);
      }
      if (below >= 0) sys3(NR_close, cur, 0, 0), cur = below, depth++;
    }
    sys3(NR_close, cur, 0, 0);
  }
  if (r != 0 && r != -ENOENT) must(r, "rmdir", name);
}

/*
 * Step 5 of the protocol: moves each entry of COPY_UP_COMPLETE into the volume's top `top`
 * (RENAME_NOREPLACE: an entry something else put there is kept, the copy's dropped), gives the
 * top the copy's owner and mode, and removes COPY_UP_COMPLETE last.
 */
static void move_in(long top) {
  long done = must(sys6(NR_openat, top, (long)COPY_UP_COMPLETE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", COPY_UP_COMPLETE);
  /* Passes until one moves nothing: a listing that entries leave as it goes is not relied on to show every one. */
  for (long moved = 1; moved;) {
    moved = 0;
    must(sys3(NR_lseek, done, 0, SEEK_SET), "lseek", COPY_UP_COMPLETE);
    for (long n; (n = must(sys3(NR_getdents64, done, copy_dents, sizeof copy_dents), "getdents64", COPY_UP_COMPLETE)) > 0;) {
      for (long off = 0; off < n;) {
        const struct dirent64_k *d = (const struct dirent64_k *)(copy_dents + off);
        off += d->reclen;
        const char *name = d->name;
        if (eq(name, ".") || eq(name, "..") || eq(name, COPY_UP_STAGING) || eq(name, COPY_UP_COMPLETE)) continue;
        long r = sys6(NR_renameat2, done, (long)name, top, (long)name, RENAME_NOREPLACE, 0);
        if (r == -EINVAL) {
          /* A file system without RENAME_NOREPLACE: with the lock held, a check first is as good. */
          struct statx_full st;
          r = sys6(NR_statx, top, (long)name, AT_SYMLINK_NOFOLLOW, STATX_TYPE, (long)&st, 0);
          r = r == -ENOENT ? sys6(NR_renameat2, done, (long)name, top, (long)name, 0, 0) : -EEXIST;
        }
        if (r == -EEXIST) continue; /* the volume's own entry wins */
        must(r, "rename", name);
        moved++;
      }
    }
  }
  struct statx_full st;
  must(sys6(NR_statx, done, (long)"", AT_EMPTY_PATH, STATX_BASIC_STATS, (long)&st, 0), "statx", COPY_UP_COMPLETE);
  must(sys6(NR_fchownat, top, (long)"", st.uid, st.gid, AT_EMPTY_PATH, 0), "fchownat", "copy-up");
  must(sys3(NR_fchmod, top, st.mode & 07777, 0), "fchmod", "copy-up");
  sys3(NR_close, done, 0, 0);
  remove_tree(top, COPY_UP_COMPLETE);
}

/*
 * Docker's volume copy-up, crash-safe and race-free by the protocol described in copy-up.ts:
 * under flock(LOCK_EX) on the volume's top `top` (held by this process, so released only when
 * it closes the fd or dies), a dead copier's COPY_UP_STAGING is removed and its COPY_UP_COMPLETE
 * moved in; otherwise, if the volume is empty, the image's directory `from` is copied into
 * COPY_UP_STAGING, which takes `from`'s owner and mode and is renamed to COPY_UP_COMPLETE (the
 * copy counts from here), then moved in. A volume holding anything else was filled already.
 */
static void copy_up(long from, long top) {
  must(retry(NR_flock, top, LOCK_EX, 0), "flock", "copy-up");
  remove_tree(top, COPY_UP_STAGING);
  struct statx_full st;
  long r = sys6(NR_statx, top, (long)COPY_UP_COMPLETE, AT_SYMLINK_NOFOLLOW, STATX_TYPE, (long)&st, 0);
  if (r == -ENOENT) {
    long n;
    for (;;) {
      n = must(sys3(NR_getdents64, top, copy_dents, sizeof copy_dents), "getdents64", "copy-up");
      int other = 0;
      for (long off = 0; off < n && !other;) {
        const struct dirent64_k *d = (const struct dirent64_k *)(copy_dents + off);
        off += d->reclen;
        other = !eq(d->name, ".") && !eq(d->name, "..");
      }
      if (other) return; /* filled already */
      if (n == 0) break;
    }
    must(sys3(NR_mkdirat, top, COPY_UP_STAGING, 0700), "mkdir", COPY_UP_STAGING);
    long stage = must(sys6(NR_openat, top, (long)COPY_UP_STAGING, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0), "open", COPY_UP_STAGING);
    copy_tree(from, stage);
    must(sys6(NR_statx, from, (long)"", AT_EMPTY_PATH, STATX_BASIC_STATS, (long)&st, 0), "statx", "copy-up");
    must(sys6(NR_fchownat, stage, (long)"", st.uid, st.gid, AT_EMPTY_PATH, 0), "fchownat", COPY_UP_STAGING);
    must(sys3(NR_fchmod, stage, st.mode & 07777, 0), "fchmod", COPY_UP_STAGING);
    sys3(NR_close, stage, 0, 0);
    must(sys6(NR_renameat2, top, (long)COPY_UP_STAGING, top, (long)COPY_UP_COMPLETE, 0, 0), "rename", COPY_UP_STAGING);
  } else {
    must(r, "statx", COPY_UP_COMPLETE);
  }
  move_in(top);
}

#endif
