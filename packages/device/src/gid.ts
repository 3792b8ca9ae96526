/** GID helpers. A GID is 16 bytes in network order (an IPv6 address for RoCE). */

export function isZeroGid(gid: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (gid[i] !== 0) return false;
  return true;
}

/** fe80::/10, the per-link GID every RoCE port has. 3FS skips it when choosing the GID for connections. */
export function isLinkLocalGid(gid: Uint8Array): boolean {
  return gid[0] === 0xfe && (gid[1]! & 0xc0) === 0x80;
}

/**
 * The GID as inet_ntop prints it (and so as `ibv_devinfo -v` does): compressed IPv6, with IPv4-mapped
 * addresses as `::ffff:a.b.c.d`.
 */
export function formatGid(gid: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((gid[i]! << 8) | gid[i + 1]!);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${gid[12]}.${gid[13]}.${gid[14]}.${gid[15]}`;
  // Longest run of ≥ 2 zero groups becomes "::" (the first one on ties), as RFC 5952 says.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}
