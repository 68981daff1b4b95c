import torch

from attnviz.workspace import Workspace


def test_a_name_gets_the_same_memory_until_it_needs_more() -> None:
    workspace = Workspace()
    first = workspace.take("attention", (4, 3))
    smaller = workspace.take("attention", (2, 5))
    assert smaller.shape == (2, 5) and smaller.data_ptr() == first.data_ptr()
    larger = workspace.take("attention", (5, 3))
    assert larger.shape == (5, 3) and larger.data_ptr() != first.data_ptr()
    assert workspace.take("attention", (3, 5)).data_ptr() == larger.data_ptr()


def test_names_do_not_share_memory() -> None:
    workspace = Workspace()
    one, other = workspace.take("one", (10,)), workspace.take("other", (10,))
    one.fill_(1.0)
    other.fill_(2.0)
    assert one.eq(1.0).all() and other.dtype == torch.float32
