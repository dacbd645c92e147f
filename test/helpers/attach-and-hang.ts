/**
 * Child process for the "killed while attached" tests: attaches an XDP program through
 * XdpManager, says so on stdout, then waits to be killed (SIGKILL: no cleanup code runs).
 *   vite-node test/helpers/attach-and-hang.ts -- OBJECT PROGRAM DEVICE NETNS ROOT pin|link
 */
import { BpfObject } from '../../src/backends/ebpf/object.js';
import { XdpManager } from '../../src/backends/ebpf/xdp.js';

const args = process.argv.slice(2).filter((arg) => arg !== '--');
const [object, program, device, netns, root, lifetime] = args;
const loaded = BpfObject.open(object!).load();
const manager = new XdpManager({ root: root! });
const attachment = manager.attach(loaded, program!, {
  device: device!,
  netns: netns!,
  pin: lifetime === 'pin',
});
process.stdout.write(`attached ${attachment.progId}\n`);
setInterval(() => {}, 1000);
