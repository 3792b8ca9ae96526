/** The kit's services.json: services with their methods, and the struct schemas by C++ name. */
export interface KitServices {
  source: string;
  services: unknown[];
  types: Record<string, unknown>;
}

/** The generated files (`src/generated/<name>`), exactly as committed. */
export function generate(kit: KitServices): { 'schemas.ts': string; 'services.ts': string };
