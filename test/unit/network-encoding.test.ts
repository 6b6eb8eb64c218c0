import { describe, expect, it } from 'vitest';
import {
  encodeAttrs,
  encodeIfInfo,
  encodeMessage,
  nested,
  attrString,
  attrU32,
  parseAttrs,
  parseMessages,
  encodeRtMsg,
  macBytes,
  ipv4Bytes,
} from '../../src/kernel/netlink-attrs.js';
import { encodeBatch, match, NFT } from '../../src/kernel/nftables.js';
import { BerthError } from '../../src/errors.js';

describe('netlink encoding', () => {
  it('pads string attributes to 4 bytes', () => {
    expect(encodeAttrs([attrString(3, 'br0')]).toString('hex')).toBe('0800030062723000');
    expect(encodeAttrs([attrString(3, 'eth0')]).toString('hex')).toBe('0900030065746830' + '00000000');
  });

  it('nests attributes and sets NLA_F_NESTED on request', () => {
    const b = encodeAttrs([nested(18, [attrString(1, 'veth')], true)]);
    expect(b.readUInt16LE(0)).toBe(4 + 12);
    expect(b.readUInt16LE(2)).toBe(18 | 0x8000);
    expect(parseAttrs(b).get(18)).toBeDefined();
  });

  it('builds nlmsghdr + ifinfomsg as the kernel lays them out', () => {
    const body = Buffer.concat([encodeIfInfo({ index: 7, flags: 1, change: 1 }), encodeAttrs([attrU32(4, 1500)])]);
    const m = encodeMessage({ type: 16, flags: 0x5, seq: 42, body });
    expect(m.toString('hex')).toBe(
      '28000000' +
        '1000' +
        '0500' +
        '2a000000' +
        '00000000' + // nlmsghdr: len 40, RTM_NEWLINK, REQUEST|ACK, seq 42, pid 0
        '00000000' +
        '07000000' +
        '01000000' +
        '01000000' + // ifinfomsg
        '08000400' +
        'dc050000', // IFLA_MTU 1500
    );
    const [back] = parseMessages(m);
    expect(back).toMatchObject({ type: 16, flags: 5, seq: 42 });
    expect(back!.body.equals(body)).toBe(true);
  });

  it('lays out rtmsg in 12 bytes', () => {
    expect(encodeRtMsg({ family: 2, dstLen: 24, table: 254, protocol: 3, scope: 0, type: 1 }).toString('hex')).toBe(
      '021800'.padEnd(6, '0') + '00fe030001' + '00000000',
    );
  });

  it('parses addresses and rejects malformed ones', () => {
    expect(ipv4Bytes('10.89.0.1').toString('hex')).toBe('0a590001');
    expect(macBytes('02:42:0a:59:00:02').toString('hex')).toBe('02420a590002');
    const invalid = expect.objectContaining({ code: 'INVALID_ARGUMENT' });
    expect(() => ipv4Bytes('10.89.0')).toThrow(BerthError);
    expect(() => ipv4Bytes('10.89.0')).toThrow(invalid);
    expect(() => macBytes('zz:42:0a:59:00:02')).toThrow(BerthError);
    expect(() => macBytes('zz:42:0a:59:00:02')).toThrow(invalid);
  });
});

describe('nf_tables encoding', () => {
  it('wraps messages in a batch with the nftables subsystem id', () => {
    const b = encodeBatch(
      [{ msg: NFT.MSG_NEWTABLE, flags: 0x400, family: NFT.FAMILY_IPV4, attrs: [attrString(1, 't')] }],
      100,
    );
    const msgs = parseMessages(b);
    expect(msgs.map((m) => [m.type, m.seq])).toEqual([
      [0x10, 100],
      [(10 << 8) | 0, 101],
      [0x11, 102],
    ]);
    expect(msgs[0]!.body.toString('hex')).toBe('0000000a'); // nfgenmsg: AF_UNSPEC, v0, res_id 10 (big-endian)
    expect(msgs[1]!.flags).toBe(0x1 | 0x4 | 0x400);
    expect(msgs[1]!.body.subarray(0, 4).toString('hex')).toBe('02000000');
  });

  it('matches a subnet with payload, bitwise and cmp', () => {
    const e = match.ipNet('saddr', '10.89.0.0', 24);
    expect(e.map((x) => x.name)).toEqual(['payload', 'bitwise', 'cmp']);
    expect(match.ipNet('daddr', '127.0.0.1', 32).map((x) => x.name)).toEqual(['payload', 'cmp']);
    expect(match.dport('udp', 53).map((x) => x.name)).toEqual(['meta', 'cmp', 'payload', 'cmp']);
  });
});
