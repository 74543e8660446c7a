fn main() { println!("bench_engine: not written yet"); }
