/** `ffnet devices`: lists RDMA devices. The device layer wires this up; until then it says so. */
export async function runDevices(_argv: readonly string[] = []): Promise<number> {
  process.stdout.write('ffnet devices: not yet wired\n');
  return 0;
}
