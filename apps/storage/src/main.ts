#!/usr/bin/env node
// ffnet-storage [tcp|unix|rdma]: starts a storage server, writes one chunk and batch-reads a few back, checked by CRC.
import { rdma } from '@ffnet/rdma';
import { Client, Server, type ServiceGroupConfig } from '@ffnet/server';
import { tcp, unix } from '@ffnet/transport';
import { fillChunk, StorageClient, storageService } from './index.js';

const kind = (process.argv[2] ?? 'tcp') as 'tcp' | 'unix' | 'rdma';
const group: ServiceGroupConfig =
  kind === 'unix'
    ? { networkType: 'unix', listener: {} } // the default path: a private directory of this user's
    : { networkType: kind, listener: { host: kind === 'rdma' ? '0.0.0.0' : '127.0.0.1', port: 0 } };

// rdma(): the verbs backend; the client's also brings RDMAControl (at most 64 server writes into its memory at once).
const server = new Server({ backends: [tcp(), unix(), rdma()], groups: [group] });
const storage = storageService({ chunkSize: 64 * 1024 });
server.addService(storage);
await server.start();
const address = server.addresses[0]!;
const client = new Client({ backends: [tcp(), unix(), rdma({ control: { maxConcurrentTransmission: 64 } })] });
const sc = new StorageClient(client, address);
try {
  await sc.write(7, Buffer.from('hello, chunk 7'));
  const [c7, c1] = await sc.read([
    { id: 7, offset: 0, length: 100 },
    { id: 1, offset: 4096, length: 8192 },
  ]);
  const expected = Buffer.alloc(8192);
  fillChunk(1, 4096, expected);
  console.log(`${address}: chunk 7 = ${JSON.stringify(c7!.toString())}, chunk 1 [4096, 12288) matches: ${c1!.equals(expected)}`);
} finally {
  sc.close();
  await client.stop();
  await server.stop();
  storage.close();
}
