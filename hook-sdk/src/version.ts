/** What the SDK calls itself in `hello.client`; a test keeps the version equal to package.json's. */
export const SDK_NAME = 'cryo-hook-sdk-node';
export const SDK_VERSION = '0.1.0';
