/*
 * berth-init's memory: an arena of anonymous mappings, never freed (the process execs or exits
 * soon), for what the plan and the container's files need.
 */
#ifndef BERTH_ARENA_H
#define BERTH_ARENA_H
#include "failure.h"

enum { PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20 };

static char *arena;
static unsigned long arena_left;

/* Memory that is never freed (the process execs or exits soon). */
static void *alloc(unsigned long n) {
  n = (n + 15) & ~15ul;
  if (n > arena_left) {
    unsigned long size = n > (1ul << 20) ? n : (1ul << 20);
    long p = sys6(NR_mmap, 0, (long)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p < 0 && p > -4096) must(p, "mmap", 0);
    arena = (char *)p;
    arena_left = size;
  }
  void *r = arena;
  arena += n;
  arena_left -= n;
  return r;
}

/* `v` in decimal, in the arena. */
static char *num_str(long long v) {
  char *b = (char *)alloc(24);
  *put_num(b, v) = 0;
  return b;
}

#endif
