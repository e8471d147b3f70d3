// Store keys owned by the use cases. The full documented table of keys is src/adapters/store/keys.ts;
// these constants must stay equal to it (test/store-keys.test.ts checks).

export const SETTINGS_KEY = 'settings';
export const uploadKey = (id: string): string => `upload:${id}`;
export const uploadBlobKey = (id: string): string => `blob:upload:${id}`;
