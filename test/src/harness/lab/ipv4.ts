/** The little IPv4 arithmetic the lab's bridge network needs. */

export interface Ipv4Cidr {
  address: string;
  prefix: number;
}

export function parseIpv4Cidr(cidr: string): Ipv4Cidr {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
  const prefix = match ? Number(match[2]) : NaN;
  if (!match || match[1].split('.').some((o) => Number(o) > 255) || prefix < 8 || prefix > 30) {
    throw new Error(`not an IPv4 address with a prefix length between 8 and 30: ${cidr}`);
  }
  return { address: match[1], prefix };
}

function toInt(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function fromInt(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/**
 * The `index`th usable address of the bridge's subnet (1 is the first after the network
 * address), or undefined past the last one; the bridge's own address counts like any other.
 */
export function subnetAddress({ address, prefix }: Ipv4Cidr, index: number): string | undefined {
  const size = 2 ** (32 - prefix);
  if (index < 1 || index > size - 2) return undefined;
  const network = toInt(address) - (toInt(address) % size);
  return fromInt(network + index);
}
