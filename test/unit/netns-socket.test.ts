import { describe, expect, it } from 'vitest';
import { listeningPorts } from '../../src/runtime/netns-socket.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

describe('listeningPorts', () => {
  it.each([
    ['an empty table', HEADER, []],
    [
      'an IPv4 listener on 0.0.0.0:8080',
      `${HEADER}   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n`,
      [8080],
    ],
    [
      'an IPv6 listener on [::]:80',
      `${HEADER}   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n`,
      [80],
    ],
    [
      'an established connection (state 01) is not a listener',
      `${HEADER}   0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1 1\n`,
      [],
    ],
    [
      'two listeners and a TIME_WAIT',
      `${HEADER}   0: 0100007F:0016 00000000:0000 0A 0 0 0 0 0 1 1\n   1: 00000000:01BB 00000000:0000 0A 0 0 0 0 0 1 1\n   2: 0100007F:1F90 0100007F:D431 06 0 0 0 0 0 1 1\n`,
      [22, 443],
    ],
  ])('%s', (_title, table, ports) => {
    expect([...listeningPorts(table)].sort((a, b) => a - b)).toEqual(ports);
  });
});
