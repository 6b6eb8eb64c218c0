/*
 * The output cap of a detached container's log (<max-output> and <keep> of berth-monitor): the
 * rule of src/runtime/log-cap.ts, which documents it (headKept, tailRotates, tailDrops there are
 * mon_head_kept, mon_tail_rotates, mon_tail_drops here: keep them in step), and the carry of
 * src/runtime/log-carry.ts. Included by monitor.c after its log writing.
 */

/* The cap (0: none), whether it keeps the tail, the bytes counted per stream (index 1 stdout,
 * 2 stderr: with head those logged, with tail those in the current file), the streams cut. */
static u64 max_output;
static int keep_tail, cut;
static u64 counted[3];

/* head: how many bytes of a chunk of n are logged when `kept` were logged already. */
static u64 mon_head_kept(u64 kept, u64 n, u64 max) {
  if (kept >= max) return 0;
  return n < max - kept ? n : max - kept;
}

/* tail: whether a chunk of n bytes starts a new file, its stream having `in_current` bytes in the current one. */
static int mon_tail_rotates(u64 in_current, u64 n, u64 max) {
  return in_current > 0 && in_current + n > max;
}

/* tail: whether the oldest carried record (`size` bytes) is dropped, `rest` bytes of its stream
 * being in it and after it among the carried ones, `newer` in the file that becomes .1. */
static int mon_tail_drops(u64 rest, u64 size, u64 newer, u64 max) {
  return rest - size + newer >= max;
}

static unsigned char carry_buf[HEADER + CHUNK + TRAILER];
static char name_c[4096 + 32];

/* Reads exactly n bytes at `off` of fd; 1 when it did. */
static int read_at(long fd, unsigned char *buf, long n, u64 off) {
  long got = 0;
  while (got < n) {
    long r = sys6(NR_pread64, fd, (long)(buf + got), n - got, (long)(off + (u64)got), 0, 0);
    if (r == -EINTR) continue;
    if (r <= 0) return 0;
    got += r;
  }
  return 1;
}

/* Writes n bytes of buf to fd; 1 when it did. */
static int write_all(long fd, const unsigned char *buf, long n) {
  long done = 0;
  while (done < n) {
    long w = sys3(NR_write, fd, buf + done, n - done);
    if (w == -EINTR) continue;
    if (w <= 0) return 0;
    done += w;
  }
  return 1;
}

/* One record's header read at `pos` of fd into carry_buf: its kind, data length and size on disk; 0 at the end. */
static int next_record(long fd, u64 pos, int *kind, u64 *len, u64 *size) {
  if (!read_at(fd, carry_buf, HEADER, pos)) return 0;
  *kind = carry_buf[0];
  *len = 0;
  for (int i = 3; i >= 0; i--) *len = (*len << 8) | carry_buf[9 + i];
  *size = HEADER + *len + ((*kind & 0x80) ? TRAILER : 0);
  return 1;
}

/* Copies `size` bytes at `pos` of `from` to `to`; 1 when it did. */
static int copy_span(long from, long to, u64 pos, u64 size) {
  for (u64 done = 0; done < size;) {
    long n = size - done < sizeof carry_buf ? (long)(size - done) : (long)sizeof carry_buf;
    if (!read_at(from, carry_buf, n, pos + done) || !write_all(to, carry_buf, n)) return 0;
    done += (u64)n;
  }
  return 1;
}

/*
 * Writes to <log-path>.2.tmp (name_c) the records of `stream` in fds[0..n) (oldest first) it
 * still needs, `newer` of its bytes being in newer files (carryTail of log-carry.ts). Returns 1
 * when it wrote some, 0 when none were needed, -1 on a failure (nothing is rotated then).
 */
static int carry(const long *fds, int n, int stream, u64 newer) {
  int want = 0x80 | stream, mid = 0;
  u64 rest = 0, pos, len, size;
  int kind;
  for (int f = 0; f < n; f++)
    for (pos = 0; next_record(fds[f], pos, &kind, &len, &size); pos += size)
      if ((kind | 0x80) == want) rest += len;
  long out = -1;
  for (int f = 0; f < n; f++) {
    for (pos = 0; next_record(fds[f], pos, &kind, &len, &size); pos += size) {
      if (kind == 0x83 || len == 0) continue;
      if ((kind | 0x80) != want) {
        cut |= (kind & 0x7f) == 2 ? 2 : 1;
        continue;
      }
      /* Once one is kept, so are all after it (what stays only shrinks). */
      int drop = mon_tail_drops(rest, len, newer, max_output);
      rest -= len;
      if (drop) {
        cut |= stream;
        if (!read_at(fds[f], carry_buf, 1, pos + HEADER + len - 1)) goto fail;
        mid = carry_buf[0] != '\n';
        continue;
      }
      if (out < 0) {
        u64 t = 0;
        for (int i = 7; i >= 0; i--) t = (t << 8) | carry_buf[1 + i];
        out = sys6(NR_openat, AT_FDCWD, (long)name_c, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640, 0, 0);
        if (out < 0 || !write_all(out, boundary_record(t, mid ? stream : 0), HEADER + 1 + TRAILER)) goto fail;
      }
      if (!copy_span(fds[f], out, pos, size)) goto fail;
    }
  }
  if (out >= 0 && sys3(NR_close, out, 0, 0) < 0) return -1;
  return out >= 0;
fail:
  if (out >= 0) sys3(NR_close, out, 0, 0);
  return -1;
}

/*
 * The tail cap's rotation (log-cap.ts): <log-path>.2 becomes what the stream that did not fill the
 * current file (`3 - full`) still needs of the old .2 and .1, then the current file becomes .1
 * and a new one is started. On a failure the current file is kept.
 */
static void rotate_tail(u64 t, int full) {
  int other = 3 - full;
  u64 newer = counted[other];
  /* A new file counts from 0 (after a failed rotation too: a failing disk is not scanned at every read). */
  counted[1] = counted[2] = 0;
  rotated_name(name_a, 2);
  rotated_name(name_b, 1);
  char *p = put_str(put_str(name_c, name_a), ".tmp");
  *p = 0;
  long fds[2];
  int n = 0;
  for (int i = 0; i < 2; i++) {
    long fd = sys6(NR_openat, AT_FDCWD, (long)(i == 0 ? name_a : name_b), O_RDONLY | O_CLOEXEC, 0, 0, 0);
    if (fd >= 0) fds[n++] = fd;
    else if (fd != -ENOENT) goto done;
  }
  {
    int carried = carry(fds, n, other, newer);
    long r = carried > 0 ? sys6(NR_renameat2, AT_FDCWD, (long)name_c, AT_FDCWD, (long)name_a, 0, 0)
             : carried == 0 ? sys3(NR_unlinkat, AT_FDCWD, (long)name_a, 0)
                            : -1;
    if (carried < 0) sys3(NR_unlinkat, AT_FDCWD, (long)name_c, 0);
    if ((r < 0 && r != -ENOENT) || carried < 0) goto done;
    if (sys6(NR_renameat2, AT_FDCWD, (long)log_path, AT_FDCWD, (long)name_b, 0, 0) < 0) goto done;
  }
  start_file(t);
done:
  for (int i = 0; i < n; i++) sys3(NR_close, fds[i], 0, 0);
}
