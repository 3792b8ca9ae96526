import { describeDevices, formatDevices } from '@ffnet/device';

/**
 * `ffnet devices [--json]`: RDMA devices, ports and GIDs, laid out like `ibv_devinfo -v`'s summary.
 * Exits 1 when there is no usable device, after saying why (no library, no kernel support, no devices),
 * so scripts can tell "nothing here" from a listing.
 */
export async function runDevices(argv: readonly string[] = []): Promise<number> {
  const json = argv.includes('--json');
  const unknown = argv.filter((a) => a !== '--json');
  if (unknown.length > 0) {
    process.stderr.write(`ffnet devices: unknown argument ${unknown[0]}\nusage: ffnet devices [--json]\n`);
    return 2;
  }
  const report = describeDevices();
  if (json) {
    // Device attributes hold 64-bit values (max_mr_size) as bigint.
    process.stdout.write(`${JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
  } else {
    process.stdout.write(formatDevices(report));
  }
  return report.devices.length > 0 ? 0 : 1;
}
