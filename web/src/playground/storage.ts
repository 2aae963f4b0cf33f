/** What the playground remembers: the code (local storage, across visits) and the API key (session storage:
 * gone when the tab closes). Storage may be unavailable (private windows): then nothing is kept. */

const CODE_KEY = "penny.playground.code";
const API_KEY_KEY = "penny.playground.apiKey";

function read(storage: () => Storage, key: string): string | null {
  try { return storage().getItem(key); } catch { return null; }
}

function write(storage: () => Storage, key: string, value: string): void {
  try {
    if (value) storage().setItem(key, value); else storage().removeItem(key);
  } catch { /* not kept */ }
}

export const savedCode = () => read(() => localStorage, CODE_KEY);
export const saveCode = (code: string) => write(() => localStorage, CODE_KEY, code);
export const savedApiKey = () => read(() => sessionStorage, API_KEY_KEY) ?? "";
export const saveApiKey = (key: string) => write(() => sessionStorage, API_KEY_KEY, key);
