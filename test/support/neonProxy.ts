import net from 'node:net';
import { neonConfig } from '@neondatabase/serverless';
import ws, { WebSocketServer } from 'ws';
import { useLocalWsProxy } from '../../lib/sql/client.ts';

/**
 * A local stand-in for Neon's WebSocket proxy, so the real Neon driver can reach a local
 * PostgreSQL: `ws://127.0.0.1:<port>/v1?address=<host>:<port>`, PostgreSQL's wire protocol in
 * binary frames both ways (the wsproxy contract).
 */
export interface NeonProxy {
  port: number;
  /** WebSocket connections accepted so far (proves traffic really went through the proxy). */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startNeonProxy(): Promise<NeonProxy> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/v1' });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const sockets = new Set<net.Socket>();
  let connections = 0;

  server.on('connection', (socket, request) => {
    connections += 1;
    const address = new URL(request.url ?? '', 'ws://proxy').searchParams.get('address') ?? '';
    const separator = address.lastIndexOf(':');
    const tcp = net.connect(Number(address.slice(separator + 1)), address.slice(0, separator));
    sockets.add(tcp);
    // Frames arriving before the TCP connection is up are buffered by the socket's writable side.
    socket.on('message', (data) => tcp.write(data as Buffer));
    tcp.on('data', (data) => socket.send(data, { binary: true }));
    const closeBoth = () => {
      sockets.delete(tcp);
      tcp.destroy();
      socket.close();
    };
    socket.on('close', closeBoth);
    socket.on('error', closeBoth);
    tcp.on('close', closeBoth);
    tcp.on('error', closeBoth);
  });

  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('neon proxy: no TCP address');
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const tcp of sockets) tcp.destroy();
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}

/**
 * Points the Neon driver (process-wide `neonConfig`) at the proxy: plain ws://, no TLS inside,
 * and no pipelined connect (with SCRAM, pipelining 'password' fails against a real server).
 */
export function routeNeonThroughProxy(proxy: NeonProxy): void {
  neonConfig.webSocketConstructor = ws;
  useLocalWsProxy(proxyAddress(proxy));
}

/** The value of RETENTION_NEON_WSPROXY for a CLI process that should reach the local server through the proxy. */
export function proxyAddress(proxy: NeonProxy): string {
  return `127.0.0.1:${proxy.port}/v1`;
}
