import type { DiskProbe } from '../disk/probe.ts';
import { statfsProbe } from '../disk/probe.ts';
import { surveyDisks } from '../disk/survey.ts';
import { send } from './http.ts';
import type { Routes } from './routes.ts';
import type { ApiContext } from './state.ts';

/**
 * The dashboard's disk cards: each file system under fs policies, measured on request (statfs:
 * a few system calls). Alerts stay with the daemon and `retention disk`, which keep the cooldowns.
 */
export function addDiskRoutes(routes: Routes, ctx: ApiContext, probe: DiskProbe = statfsProbe): void {
  routes.add(
    {
      method: 'get',
      path: '/api/disk',
      access: 'viewer',
      summary: 'Disk cards: per file system under fs policies, its policies, percent used and level',
      responses: { 200: 'OK' },
    },
    async (c) => {
      const { warning, critical } = ctx.config.disk;
      const filesystems = await surveyDisks(ctx.config.policies, { warning, critical }, probe);
      return send(c, { warning, critical, filesystems });
    },
  );
}
