//! The backward pass (PyTorch's `Engine::execute`, single-threaded on the calling thread).
//!
//! 1. Walk the graph from the roots and count, for every node, the edges that lead into it.
//! 2. Seed the roots' input buffers with their gradients.
//! 3. Repeatedly run the ready node with the highest sequence number (the most recently
//!    created), reduce its outputs to the metadata of the inputs they flow to, and add them
//!    into the next nodes' buffers.
//!
//! `autograd.grad` captures the gradients flowing into the requested tensors instead of
//! accumulating them, and runs only the part of the graph that leads to them.

use std::collections::BinaryHeap;

// Keys are node addresses: no need for SipHash's DoS resistance.
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use opdispatch_dispatch::Result;
use opdispatch_tensor::Tensor;

use crate::calls;
use crate::grad_mode::AutoGradMode;
use crate::meta;
use crate::node::{AccumulateGrad, Edge, Node};
use crate::runtime;

fn key(n: &Arc<dyn Node>) -> usize {
    Arc::as_ptr(n).cast::<()>().addr()
}

/// What to do with the gradients reaching some tensors.
struct Capture {
    /// (node, input number) of each requested tensor's gradient edge.
    edges: Vec<(usize, u32)>,
    grads: Vec<Option<Tensor>>,
}

struct Graph {
    nodes: HashMap<usize, Arc<dyn Node>>,
    deps: HashMap<usize, usize>,
}

fn discover(roots: &[Edge]) -> Graph {
    // Sized for small graphs up front: growing the maps rehashed several times per backward.
    let mut nodes = HashMap::with_capacity_and_hasher(32, Default::default());
    let mut deps: HashMap<usize, usize> = HashMap::with_capacity_and_hasher(32, Default::default());
    let mut stack: Vec<Arc<dyn Node>> = Vec::new();
    for e in roots {
        if let Some(f) = &e.function {
            if nodes.insert(key(f), f.clone()).is_none() {
                stack.push(f.clone());
            }
        }
    }
    while let Some(n) = stack.pop() {
        for e in n.next_edges() {
            if let Some(f) = &e.function {
                *deps.entry(key(f)).or_default() += 1;
                if nodes.insert(key(f), f.clone()).is_none() {
                    stack.push(f.clone());
                }
            }
        }
    }
    Graph { nodes, deps }
}

/// The nodes from which one of `targets` can be reached (only those run for `autograd.grad`).
fn needed(graph: &Graph, targets: &[usize]) -> HashMap<usize, bool> {
    fn visit(k: usize, graph: &Graph, targets: &[usize], memo: &mut HashMap<usize, bool>) -> bool {
        if let Some(&v) = memo.get(&k) {
            return v;
        }
        memo.insert(k, false);
        let mut v = targets.contains(&k);
        if let Some(n) = graph.nodes.get(&k) {
            for e in n.next_edges() {
                if let Some(f) = &e.function {
                    v |= visit(key(f), graph, targets, memo);
                }
            }
        }
        memo.insert(k, v);
        v
    }
    let mut memo = HashMap::default();
    let keys: Vec<usize> = graph.nodes.keys().copied().collect();
    for k in keys {
        visit(k, graph, targets, &mut memo);
    }
    memo
}

/// Reduces `g` to the shape and dtype node `to` expects at input `nr`.
fn validate(
    g: Tensor,
    to: &Arc<dyn Node>,
    nr: u32,
    from: &dyn Node,
    index: usize,
) -> Result<Tensor> {
    let Some(m) = to.input_metadata().get(nr as usize) else {
        return Ok(g);
    };
    let mut g = g;
    if g.sizes() != &m.sizes[..] {
        let expandable = g.dim() >= m.sizes.len()
            && m.sizes
                .iter()
                .rev()
                .zip(g.sizes().iter().rev())
                .all(|(&want, &have)| want == have || want == 1);
        if !expandable {
            return Err(runtime(format!(
                "Function {} returned an invalid gradient at index {index} - got {:?} but expected shape compatible with {:?}",
                from.name(),
                g.sizes(),
                &m.sizes[..]
            )));
        }
        g = calls::sum_to(&g, &m.sizes)?;
    }
    if g.dtype() != m.dtype {
        g = calls::to_dtype(&g, m.dtype)?;
    }
    Ok(g)
}

fn add_into(slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        None => g,
        Some(old) => calls::add(&old, &g)?,
    });
    Ok(())
}

struct Ready {
    seq: u64,
    order: u64,
    key: usize,
}
impl PartialEq for Ready {
    fn eq(&self, o: &Self) -> bool {
        (self.seq, self.order) == (o.seq, o.order)
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ready {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Highest sequence number first; among equals (AccumulateGrad), first ready first.
        self.seq.cmp(&o.seq).then(o.order.cmp(&self.order))
    }
}

fn execute(
    roots: Vec<(Edge, Tensor)>,
    keep_graph: bool,
    create_graph: bool,
    mut capture: Option<&mut Capture>,
    accumulate_only: Option<&[usize]>,
) -> Result<()> {
    let _mode = AutoGradMode::new(create_graph);
    let root_edges: Vec<Edge> = roots.iter().map(|(e, _)| e.clone()).collect();
    let mut graph = discover(&root_edges);
    let targets: Option<Vec<usize>> = match (&capture, accumulate_only) {
        (Some(c), _) => Some(c.edges.iter().map(|(k, _)| *k).collect()),
        (None, Some(keys)) => Some(keys.to_vec()),
        (None, None) => None,
    };
    let needed = targets.as_ref().map(|t| needed(&graph, t));
    let is_needed = |k: usize| {
        needed
            .as_ref()
            .is_none_or(|m| m.get(&k).copied().unwrap_or(false))
    };
    let mut deps = std::mem::take(&mut graph.deps);
    let mut buffers: HashMap<usize, Vec<Option<Tensor>>> =
        HashMap::with_capacity_and_hasher(graph.nodes.len(), Default::default());
    let mut heap = BinaryHeap::with_capacity(graph.nodes.len());
    let mut order = 0u64;
    for (e, g) in roots {
        let Some(f) = e.function else { continue };
        let k = key(&f);
        let buf = buffers
            .entry(k)
            .or_insert_with(|| vec![None; f.input_metadata().len().max(1)]);
        let slot = e.input_nr as usize;
        if slot >= buf.len() {
            buf.resize(slot + 1, None);
        }
        add_into(&mut buf[slot], g)?;
    }
    for (k, n) in &graph.nodes {
        if deps.get(k).copied().unwrap_or(0) == 0 {
            heap.push(Ready {
                seq: n.sequence_nr(),
                order,
                key: *k,
            });
            order += 1;
        }
    }
    while let Some(Ready { key: k, .. }) = heap.pop() {
        let node = graph.nodes[&k].clone();
        let mut grads = buffers
            .remove(&k)
            .unwrap_or_else(|| vec![None; node.input_metadata().len()]);
        crate::hooks::run_pre_hooks(&node, &mut grads)?;
        if let Some(c) = capture.as_deref_mut() {
            for (i, (ck, nr)) in c.edges.iter().enumerate() {
                if *ck == k {
                    if let Some(g) = grads.get(*nr as usize).cloned().flatten() {
                        add_into(&mut c.grads[i], g)?;
                    }
                }
            }
        }
        let is_acc = node.as_any().is::<AccumulateGrad>();
        let run = is_needed(k)
            && !(is_acc && capture.is_some())
            && !(is_acc && accumulate_only.is_some_and(|a| !a.contains(&k)));
        let outputs = if run {
            node.apply(grads)?
        } else {
            vec![None; node.next_edges().len()]
        };
        if run && !keep_graph {
            node.release_variables();
        }
        for (i, (e, g)) in node.next_edges().iter().zip(outputs).enumerate() {
            let Some(f) = &e.function else { continue };
            let fk = key(f);
            if let Some(g) = g {
                let g = validate(g, f, e.input_nr, &*node, i)?;
                let buf = buffers
                    .entry(fk)
                    .or_insert_with(|| vec![None; f.input_metadata().len().max(1)]);
                add_into(&mut buf[e.input_nr as usize], g)?;
            }
            let d = deps.get_mut(&fk).expect("every next node was discovered");
            *d -= 1;
            if *d == 0 {
                heap.push(Ready {
                    seq: f.sequence_nr(),
                    order,
                    key: fk,
                });
                order += 1;
            }
        }
    }
    Ok(())
}

fn root_grads(tensors: &[Tensor], grads: Vec<Option<Tensor>>) -> Result<Vec<(Edge, Tensor)>> {
    let mut out = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        if !t.requires_grad() {
            return Err(runtime(format!(
                "element {i} of tensors does not require grad and does not have a grad_fn"
            )));
        }
        let g = match grads.get(i).cloned().flatten() {
            Some(g) => {
                if g.sizes() != t.sizes() {
                    return Err(runtime(format!(
                        "Mismatch in shape: grad_output[{i}] has a shape of torch.Size({:?}) and output[{i}] has a shape of torch.Size({:?}).",
                        g.sizes(),
                        t.sizes()
                    )));
                }
                g
            }
            None => {
                if t.numel() != 1 {
                    return Err(runtime(
                        "grad can be implicitly created only for scalar outputs",
                    ));
                }
                let _off = AutoGradMode::new(false);
                calls::ones_like(t)?
            }
        };
        out.push((meta::gradient_edge(t), g));
    }
    Ok(out)
}

/// `torch.autograd.backward`: accumulates the gradients of `tensors` into the leaves (all of
/// them, or only `inputs`).
pub fn backward(
    tensors: &[Tensor],
    grad_tensors: Vec<Option<Tensor>>,
    retain_graph: Option<bool>,
    create_graph: bool,
    inputs: Option<&[Tensor]>,
) -> Result<()> {
    let roots = root_grads(tensors, grad_tensors)?;
    let keep = retain_graph.unwrap_or(create_graph);
    match inputs {
        None => execute(roots, keep, create_graph, None, None),
        Some(inputs) => {
            let mut keys = Vec::new();
            for t in inputs {
                let e = meta::gradient_edge(t);
                match &e.function {
                    Some(f) => keys.push(key(f)),
                    None => {
                        return Err(runtime(
                            "One of the differentiated Tensors does not require grad",
                        ))
                    }
                }
            }
            execute(roots, keep, create_graph, None, Some(&keys))
        }
    }
}

/// `torch.autograd.grad`: the gradients of `outputs` with respect to `inputs`, without touching
/// any `.grad`.
pub fn grad(
    outputs: &[Tensor],
    inputs: &[Tensor],
    grad_outputs: Vec<Option<Tensor>>,
    retain_graph: Option<bool>,
    create_graph: bool,
    allow_unused: bool,
) -> Result<Vec<Option<Tensor>>> {
    let roots = root_grads(outputs, grad_outputs)?;
    let mut edges = Vec::with_capacity(inputs.len());
    for t in inputs {
        let e = meta::gradient_edge(t);
        match &e.function {
            Some(f) => edges.push((key(f), e.input_nr)),
            None => {
                return Err(runtime(
                    "One of the differentiated Tensors does not require grad",
                ))
            }
        }
    }
    let mut cap = Capture {
        grads: vec![None; edges.len()],
        edges,
    };
    let keep = retain_graph.unwrap_or(create_graph);
    execute(roots, keep, create_graph, Some(&mut cap), None)?;
    for (i, g) in cap.grads.iter().enumerate() {
        if g.is_none() && !allow_unused {
            return Err(runtime(format!(
                "The differentiated Tensor at index {i} appears to not have been used in the graph. Set allow_unused=True if this is the desired behavior."
            )));
        }
    }
    Ok(cap.grads)
}
