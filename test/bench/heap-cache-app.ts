/**
 * The app compression-bench.ts checkpoints: a process holding an in-memory index of a shop's
 * customers and orders, as a cache or search service holds one — real objects, not random bytes:
 * records with string fields (names, e-mails, addresses, SKUs, ISO dates), nested objects, Maps
 * keyed by strings, arrays of numbers (prices, quantities, per-day counters). Values come from a
 * seeded generator over word lists, so every run builds the same heap.
 *
 * It builds until its RSS reaches TARGET_RSS_MIB (default 512) (when imported too: heap-service.ts
 * serves it over HTTP for migration-bench.ts), prints one line
 * `ready {"rssBytes":…,"customers":…,"orders":…}` and then idles, keeping everything alive.
 */
const target = Number(process.env.TARGET_RSS_MIB ?? 512) * 1024 * 1024;

// Mulberry32: small, fast, seeded.
let seed = 0x2f6b1d3;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
const int = (max: number) => Math.floor(random() * max);

const FIRST = ['Anna', 'Ben', 'Chloé', 'David', 'Elif', 'Farid', 'Greta', 'Hugo', 'Ines', 'Jonas', 'Kira', 'Luca', 'Maya', 'Noah', 'Olga', 'Paul', 'Quentin', 'Rosa', 'Samir', 'Tina', 'Ugo', 'Vera', 'Wen', 'Yusuf', 'Zoe'];
const LAST = ['Müller', 'Schmidt', 'García', 'Rossi', 'Nowak', 'Dubois', 'Jensen', 'Kowalski', 'Silva', 'Novák', 'Horvat', 'Papadopoulos', 'Yılmaz', 'Andersson', 'Virtanen', 'Byrne', 'Costa', 'Lindqvist'];
const STREETS = ['Hauptstraße', 'Rue de la Paix', 'Calle Mayor', 'Via Roma', 'Main Street', 'Kungsgatan', 'Ulica Długa', 'Praça do Comércio', 'Market Lane', 'Mill Road'];
const CITIES = ['Berlin', 'Paris', 'Madrid', 'Rome', 'Warsaw', 'Lisbon', 'Stockholm', 'Vienna', 'Prague', 'Dublin', 'Helsinki', 'Athens', 'Zagreb', 'Copenhagen'];
const DOMAINS = ['example.com', 'mail.example.org', 'shop.example.net', 'corp.example'];
const CATEGORIES = ['books', 'garden', 'kitchen', 'toys', 'audio', 'office', 'sports', 'outdoor', 'bath', 'lighting'];
const ADJECTIVES = ['compact', 'wireless', 'organic', 'stainless', 'foldable', 'vintage', 'ergonomic', 'waterproof', 'handmade', 'recycled'];
const NOUNS = ['kettle', 'lamp', 'backpack', 'notebook', 'speaker', 'chair', 'blanket', 'bottle', 'planter', 'headphones', 'desk', 'mug'];
const STATUSES = ['placed', 'paid', 'packed', 'shipped', 'delivered', 'returned'];

interface Product {
  sku: string;
  title: string;
  category: string;
  priceCents: number;
  tags: string[];
  dailySales: number[];
}
interface Customer {
  id: string;
  name: { first: string; last: string };
  email: string;
  address: { street: string; number: number; city: string; postcode: string };
  since: string;
  orderIds: string[];
  preferences: Record<string, boolean | string>;
}
interface Order {
  id: string;
  customerId: string;
  placedAt: string;
  status: string;
  lines: { sku: string; quantity: number; unitCents: number }[];
  totals: number[];
  note?: string;
}

const products = new Map<string, Product>();
const customers = new Map<string, Customer>();
const orders = new Map<string, Order>();
const byCity = new Map<string, string[]>();
const byEmail = new Map<string, Customer>();
const byCategory = new Map<string, Product[]>();

const dateIn2026 = () => new Date(Date.UTC(2026, int(12), 1 + int(28), int(24), int(60), int(60))).toISOString();

for (let i = 0; i < 20_000; i++) {
  const category = pick(CATEGORIES);
  const product: Product = {
    sku: `SKU-${category.slice(0, 3).toUpperCase()}-${String(i).padStart(6, '0')}`,
    title: `${pick(ADJECTIVES)} ${pick(NOUNS)} ${pick(['S', 'M', 'L', 'XL', 'Pro', 'Lite', '2'])}`,
    category,
    priceCents: 199 + int(40_000),
    tags: Array.from({ length: 1 + int(4) }, () => pick(ADJECTIVES)),
    dailySales: Array.from({ length: 30 }, () => int(50)),
  };
  products.set(product.sku, product);
  const sameCategory = byCategory.get(category);
  if (sameCategory === undefined) byCategory.set(category, [product]);
  else sameCategory.push(product);
}
const skus = [...products.keys()];

let customerCount = 0;
let orderCount = 0;
function addCustomer(): void {
  const first = pick(FIRST);
  const last = pick(LAST);
  const id = `cus_${(customerCount++).toString(36).padStart(8, '0')}`;
  const customer: Customer = {
    id,
    name: { first, last },
    email: `${first}.${last}.${customerCount}@${pick(DOMAINS)}`.toLowerCase(),
    address: { street: pick(STREETS), number: 1 + int(200), city: pick(CITIES), postcode: String(10_000 + int(89_999)) },
    since: dateIn2026(),
    orderIds: [],
    preferences: { newsletter: random() < 0.4, language: pick(['de', 'fr', 'es', 'it', 'pl', 'pt', 'sv', 'en']), currency: pick(['EUR', 'SEK', 'PLN', 'CZK', 'DKK']) },
  };
  for (let n = int(6); n > 0; n--) {
    const order: Order = {
      id: `ord_${(orderCount++).toString(36).padStart(9, '0')}`,
      customerId: id,
      placedAt: dateIn2026(),
      status: pick(STATUSES),
      lines: Array.from({ length: 1 + int(4) }, () => {
        const sku = pick(skus);
        return { sku, quantity: 1 + int(3), unitCents: products.get(sku)!.priceCents };
      }),
      totals: [],
      ...(random() < 0.1 ? { note: `Please leave the parcel at ${pick(STREETS)} ${1 + int(99)}, ${pick(['back door', 'neighbour', 'reception', 'garage'])}.` } : {}),
    };
    const net = order.lines.reduce((sum, line) => sum + line.quantity * line.unitCents, 0);
    order.totals = [net, Math.round(net * 0.19), Math.round(net * 1.19), random() * 10];
    orders.set(order.id, order);
    customer.orderIds.push(order.id);
  }
  customers.set(id, customer);
  byEmail.set(customer.email, customer);
  const city = byCity.get(customer.address.city);
  if (city === undefined) byCity.set(customer.address.city, [id]);
  else city.push(id);
}

while (process.memoryUsage.rss() < target) {
  for (let i = 0; i < 10_000; i++) addCustomer();
}
/** The index's size (heap-service.ts serves it). */
export const heapSummary = () => ({ customers: customers.size, orders: orders.size, products: products.size });
process.stdout.write(`ready ${JSON.stringify({ rssBytes: process.memoryUsage.rss(), ...heapSummary() })}\n`);
// Everything stays reachable; the process only waits to be checkpointed.
setInterval(() => {
  if (byEmail.size === -1) console.log(byCategory.size, byCity.size);
}, 60_000);
