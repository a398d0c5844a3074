//! Fuzzes the streaming NAR reader: arbitrary bytes must give a typed error
//! or a NAR that the writer reproduces byte for byte.
#![no_main]

use std::sync::OnceLock;

use cairn_pathinfo::nar::{NarEvent, NarReader, NarWriter, read_nar};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncReadExt;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        // Visitor interface: accepted input is canonical.
        let mut w = NarWriter::new(Vec::new());
        if let Ok(size) = read_nar(data, &mut w).await {
            assert_eq!(size, data.len() as u64);
            let out = w.finish().await.expect("complete NAR");
            assert_eq!(out, data);
        }
        // Pull interface, reading file contents in small pieces.
        let mut r = NarReader::new(data);
        while let Ok(Some(ev)) = r.next().await {
            if let NarEvent::File { mut contents, .. } = ev {
                let mut buf = [0u8; 3];
                while let Ok(n) = contents.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    });
});
