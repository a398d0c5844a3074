//! VMM command lines: QEMU (what runs on machines without working KVM:
//! `-accel tcg`) and Cloud Hypervisor, both with shared guest memory and
//! the store on a vhost-user-fs socket, the serial console on stdout.

use std::ffi::OsString;
use std::path::PathBuf;

/// Which VMM boots the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vmm {
    Qemu,
    CloudHypervisor,
}

/// Everything a VMM needs to boot the guest.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub command_line: String,
    pub memory_mib: u64,
    pub cpus: u32,
    /// The vhost-user-fs socket and the tag the guest mounts.
    pub socket: PathBuf,
    pub tag: String,
    pub request_queues: usize,
    pub queue_size: u16,
    /// QEMU's accelerator (`tcg`, `kvm`).
    pub accel: String,
}

impl Vmm {
    /// The program to run.
    pub fn program(self) -> &'static str {
        match self {
            Vmm::Qemu => "qemu-system-x86_64",
            Vmm::CloudHypervisor => "cloud-hypervisor",
        }
    }

    /// The serial console device the guest kernel writes to.
    pub fn console(self) -> &'static str {
        "ttyS0"
    }

    /// The arguments (without the program).
    pub fn arguments(self, spec: &GuestSpec) -> Vec<OsString> {
        match self {
            Vmm::Qemu => qemu_arguments(spec),
            Vmm::CloudHypervisor => cloud_hypervisor_arguments(spec),
        }
    }
}

fn qemu_arguments(spec: &GuestSpec) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |a: &str| args.push(a.into());
    push("-accel");
    push(&spec.accel);
    push("-M");
    push("pc");
    push("-m");
    push(&format!("{}M", spec.memory_mib));
    push("-smp");
    push(&spec.cpus.to_string());
    for fixed in [
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
    ] {
        push(fixed);
    }
    push("-object");
    push(&format!(
        "memory-backend-memfd,id=mem,size={}M,share=on",
        spec.memory_mib
    ));
    push("-numa");
    push("node,memdev=mem");
    push("-chardev");
    args.push(chardev_socket(&spec.socket));
    let mut push = |a: &str| args.push(a.into());
    push("-device");
    push(&format!(
        "vhost-user-fs-pci,chardev=vfs,tag={},num-request-queues={},queue-size={}",
        spec.tag, spec.request_queues, spec.queue_size
    ));
    push("-kernel");
    args.push(spec.kernel.clone().into());
    args.push("-initrd".into());
    args.push(spec.initrd.clone().into());
    args.push("-append".into());
    args.push(spec.command_line.clone().into());
    args
}

fn chardev_socket(socket: &std::path::Path) -> OsString {
    let mut arg = OsString::from("socket,id=vfs,path=");
    // QEMU splits options at commas; a doubled comma is a literal one.
    arg.push(socket.to_string_lossy().replace(',', ",,"));
    arg
}

fn cloud_hypervisor_arguments(spec: &GuestSpec) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--kernel".into(),
        spec.kernel.clone().into(),
        "--initramfs".into(),
        spec.initrd.clone().into(),
        "--cmdline".into(),
        spec.command_line.clone().into(),
        "--cpus".into(),
        format!("boot={}", spec.cpus).into(),
        "--memory".into(),
        format!("size={}M,shared=on", spec.memory_mib).into(),
        "--fs".into(),
    ];
    let mut fs = OsString::from(format!("tag={},socket=", spec.tag));
    fs.push(spec.socket.as_os_str());
    fs.push(format!(
        ",num_queues={},queue_size={}",
        spec.request_queues, spec.queue_size
    ));
    args.push(fs);
    for fixed in ["--serial", "tty", "--console", "off"] {
        args.push(fixed.into());
    }
    args
}

/// A command line for a shell: each argument quoted as needed.
pub fn shell_line(program: &str, args: &[OsString]) -> String {
    std::iter::once(program.to_owned())
        .chain(
            args.iter()
                .map(|a| crate::init::shell_quote(&a.to_string_lossy())),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GuestSpec {
        GuestSpec {
            kernel: "/k/vmlinux".into(),
            initrd: "/k/initrd".into(),
            command_line: "console=ttyS0 cairn.cmd=ZWNobw==".into(),
            memory_mib: 512,
            cpus: 1,
            socket: "/run/v,fs.sock".into(),
            tag: "nixstore".into(),
            request_queues: 2,
            queue_size: 1024,
            accel: "tcg".into(),
        }
    }

    #[test]
    fn qemu_shares_memory_and_connects_the_socket() {
        let line = shell_line("qemu-system-x86_64", &Vmm::Qemu.arguments(&spec()));
        assert!(line.contains("-accel tcg"), "{line}");
        assert!(line.contains("memory-backend-memfd,id=mem,size=512M,share=on"));
        assert!(line.contains("socket,id=vfs,path=/run/v,,fs.sock"));
        assert!(line.contains("vhost-user-fs-pci,chardev=vfs,tag=nixstore,num-request-queues=2"));
        assert!(line.contains("-append 'console=ttyS0 cairn.cmd=ZWNobw=='"));
    }

    #[test]
    fn cloud_hypervisor_line() {
        let line = shell_line("cloud-hypervisor", &Vmm::CloudHypervisor.arguments(&spec()));
        assert!(line.contains("--memory size=512M,shared=on"), "{line}");
        assert!(
            line.contains("--fs tag=nixstore,socket=/run/v,fs.sock,num_queues=2,queue_size=1024")
        );
        assert!(line.contains("--initramfs /k/initrd"));
        assert!(line.contains("--serial tty --console off"));
    }
}
