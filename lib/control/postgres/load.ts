/** The PostgreSQL control store's code and drivers, loaded when it opens. */
export const loadPostgresControl = async () => (await import('./open.ts')).openPostgresControl;
