import net from 'node:net';

/**
 * A TCP proxy in front of a real server, for faults a server will not produce on its own:
 * `cut` drops every connection and refuses new ones (the database was killed, the network
 * dropped); `freeze` keeps connections open but forwards nothing (a frozen server or VM);
 * `muteFrom` lets requests through but no answer back, from a chosen request on (a server that
 * did the work and then froze: the client cannot know whether it happened).
 */
export interface TcpProxy {
  port: number;
  /** Destroys every open connection; new ones are refused until `restore`. */
  cut(): void;
  /** Stops forwarding in both directions; connections stay open. */
  freeze(): void;
  /**
   * From the first client chunk whose text matches `request` on (e.g. an HTTP request line), the
   * server still gets everything but the client gets nothing back; connections stay open.
   */
  muteFrom(request: RegExp): void;
  restore(): void;
  /** What clients sent while frozen (never forwarded), as latin1 text: which statements a client tried. */
  heldBack(): string;
  stop(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let mode: 'open' | 'cut' | 'frozen' | 'muted' = 'open';
  let muteTrigger: RegExp | undefined;
  let heldBack = '';
  const server = net.createServer((client) => {
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => {
      if (muteTrigger?.test(chunk.toString('latin1'))) {
        mode = 'muted';
        muteTrigger = undefined;
      }
      if (mode === 'open' || mode === 'muted') upstream.write(chunk);
      else if (mode === 'frozen') heldBack += chunk.toString('latin1');
    });
    upstream.on('data', (chunk: Buffer) => {
      if (mode === 'open') client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    cut() {
      mode = 'cut';
      for (const socket of sockets) socket.destroy();
    },
    freeze() {
      mode = 'frozen';
    },
    muteFrom(request) {
      muteTrigger = request;
    },
    restore() {
      mode = 'open';
      muteTrigger = undefined;
    },
    heldBack: () => heldBack,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
