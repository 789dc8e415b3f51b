"""Generative models: Reparameterize and gaussian_kl by hand values and errors (their gradient checks are
CASES rows), the VAE's reparameterised -ELBO gradient and the GAN's two gradients (the generator's through
the discriminator's hand backward) equal to jax.grad of the same objectives in float64, and
frechet_distance against closed forms and scipy's matrix square root."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from fnn import cast, gradcheck
from fnn import layers as L
from fnn.losses import gaussian_kl
from fnn.metrics import frechet_distance, gaussian_frechet_distance
from fnn.models import generative as G

KEY = jax.random.PRNGKey(3)


# ----------------------------------------------------------------- Reparameterize, gaussian_kl

def test_reparameterize_draws_mu_plus_sigma_eps_from_the_key():
    layer = L.Reparameterize()
    assert layer.init(KEY, (6,))[0] == (3,)
    mu, log_var = jnp.array([[0.5, -1.0, 2.0]]), jnp.array([[0.0, np.log(4.0), -2.0]])
    z, _, _ = layer.forward((), (), jnp.concatenate([mu, log_var], -1), key=KEY, train=True)
    eps = jax.random.normal(KEY, (1, 3), jnp.float64)
    np.testing.assert_allclose(z, mu + jnp.array([[1.0, 2.0, np.exp(-1.0)]]) * eps, rtol=1e-12)
    y, _, cache = layer.forward((), (), jnp.concatenate([mu, log_var], -1))       # evaluation, no key
    np.testing.assert_array_equal(y, mu)
    np.testing.assert_array_equal(layer.backward((), cache, jnp.ones((1, 3)))[1], [[1, 1, 1, 0, 0, 0]])


def test_reparameterize_bad_input():
    layer = L.Reparameterize()
    with pytest.raises(ValueError, match=r"Reparameterize: training mode needs a PRNG key"):
        layer.forward((), (), jnp.zeros((2, 4)), train=True)
    with pytest.raises(ValueError, match=r"Reparameterize: expected x of shape \(B, \.\.\., 2 L\).*\(2, 5\)"):
        layer.forward((), (), jnp.zeros((2, 5)), key=KEY)
    with pytest.raises(ValueError, match=r"Reparameterize: expected an even last axis.*\(5,\)"):
        layer.init(KEY, (5,))


def test_gaussian_kl_hand_values_and_errors():
    mu, log_var = jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.0, 0.0], [np.log(2.0), 0.0]])
    expected = np.array([0.5, 0.5 * (2.0 - 1.0 - np.log(2.0))])                # 1/2 (mu^2 + s^2 - 1 - log s^2)
    np.testing.assert_allclose(gaussian_kl(mu, log_var, reduction="none"), expected, rtol=1e-14)
    np.testing.assert_allclose(gaussian_kl(mu, log_var), expected.mean(), rtol=1e-14)
    dmu, dlog_var = gaussian_kl.grad(mu, log_var, reduction="sum")
    np.testing.assert_allclose(dmu, mu)
    np.testing.assert_allclose(dlog_var, [[0.0, 0.0], [0.5, 0.0]], atol=1e-15)
    with pytest.raises(ValueError, match=r"gaussian_kl: mu and log_var must have the same shape.*\(2, 2\).*\(2,\)"):
        gaussian_kl(mu, log_var[0])
    with pytest.raises(TypeError, match=r"gaussian_kl: expected a floating-point array"):
        gaussian_kl(jnp.zeros((2, 2), jnp.int32), log_var)


def test_the_rows_are_in_the_gradcheck_table():
    names = {c.name for c in gradcheck.discover_cases()}
    assert {"Reparameterize-train", "Reparameterize-eval", "gaussian_kl", "gaussian_kl-weighted"} <= names


# ----------------------------------------------------------------- gradients vs jax.grad, float64

def _init64(model, in_shape, seed):
    _, params, state = model.init(jax.random.PRNGKey(seed), in_shape)
    params = jax.tree.map(lambda p, k: p + 0.1 * jax.random.normal(k, p.shape, p.dtype),
                          cast(params, jnp.float64), _keys(seed, params))
    return params, cast(state, jnp.float64)


def _keys(seed, tree):
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(jax.random.PRNGKey(seed + 100), len(leaves))))


def _relative(a, b):
    return gradcheck.relative_error(a, b)


def test_elbo_gradient_through_the_whole_vae_equals_autodiff():
    vae = G.conv_vae(3, width=2)                    # mlp_vae shares every line but the layers
    params, state = _init64(vae, G.IMAGE, 0)
    images = jax.random.uniform(KEY, (3, *G.IMAGE), jnp.float64)
    values, grads, _ = jax.jit(lambda p: G.elbo_grads(vae, p, state, images, KEY))(params)

    def objective(p):                               # the same -ELBO, from forward passes only
        encoder, sampler, decoder = vae.children
        stats = encoder.apply(p[0], state[0], images, train=True)[0]
        z = sampler.apply(p[1], state[1], stats, key=KEY, train=True)[0]
        logits = decoder.apply(p[2], state[2], z, train=True)[0]
        bce = jnp.sum(jnp.logaddexp(0.0, logits) - images * logits) / images.shape[0]
        mu, log_var = jnp.split(stats, 2, axis=-1)
        return bce + jnp.mean(-0.5 * jnp.sum(1 + log_var - mu**2 - jnp.exp(log_var), -1))

    value, auto = jax.jit(jax.value_and_grad(objective))(params)
    np.testing.assert_allclose(values["loss"], value, rtol=1e-12)
    np.testing.assert_allclose(values["reconstruction"] + values["kl"], value, rtol=1e-12)
    assert _relative(grads, auto) < 1e-9


def test_gan_gradients_equal_autodiff():
    generator, discriminator = G.dcgan_generator(4, width=2), G.dcgan_discriminator(width=2)
    g_params, g_state = _init64(generator, (4,), 1)
    d_params, d_state = _init64(discriminator, G.IMAGE, 2)
    noise = jax.random.normal(KEY, (3, 4), jnp.float64)
    real = jax.random.uniform(jax.random.fold_in(KEY, 1), (3, *G.IMAGE), jnp.float64, -1, 1)

    @jax.jit
    def hand(g_params, d_params):
        fake, _, g_cache = generator.forward(g_params, g_state, noise, train=True)
        d_loss, d_grads, _ = G.discriminator_grads(discriminator, d_params, d_state, real, fake)
        g_loss, g_grads, _ = G.generator_grads(generator, discriminator, g_params, g_cache, d_params, d_state,
                                               fake)
        return d_loss, d_grads, g_loss, g_grads

    def logits(d_params, images):
        return discriminator.apply(d_params, d_state, images, train=True)[0]

    def fake_of(g_params):
        return generator.apply(g_params, g_state, noise, train=True)[0]

    def d_objective(d_params, fake):
        return (jnp.mean(jnp.logaddexp(0.0, -logits(d_params, real)))
                + jnp.mean(jnp.logaddexp(0.0, logits(d_params, fake))))

    def g_objective(g_params):                       # non-saturating: -log sigmoid(D(G(z)))
        return jnp.mean(jnp.logaddexp(0.0, -logits(d_params, fake_of(g_params))))

    d_loss, d_grads, g_loss, g_grads = hand(g_params, d_params)
    d_value, d_auto = jax.jit(jax.value_and_grad(d_objective))(d_params, fake_of(g_params))
    g_value, g_auto = jax.jit(jax.value_and_grad(g_objective))(g_params)
    np.testing.assert_allclose([d_loss, g_loss], [d_value, g_value], rtol=1e-12)
    assert _relative(d_grads, d_auto) < 1e-9
    assert _relative(g_grads, g_auto) < 1e-9


def test_builders_give_the_documented_shapes():
    assert G.conv_vae(4, width=2).init(KEY, G.IMAGE)[0] == G.IMAGE
    assert G.mlp_vae().init(KEY, G.IMAGE)[0] == G.IMAGE
    assert G.dcgan_generator(8, width=2).init(KEY, (8,))[0] == G.IMAGE
    assert G.dcgan_discriminator(width=2).init(KEY, G.IMAGE)[0] == (1,)
    classifier = G.feature_classifier(width=2, features=5)
    assert classifier.init(KEY, G.IMAGE)[0] == (10,)
    assert classifier.children[0].init(KEY, G.IMAGE)[0] == (5,)


# ----------------------------------------------------------------- Frechet distance

def test_gaussian_frechet_distance_closed_forms():
    mean_a, mean_b = np.array([1.0, 2.0]), np.array([0.0, 0.0])
    var_a, var_b = np.array([4.0, 1.0]), np.array([1.0, 9.0])          # commuting: sum (sqrt a - sqrt b)^2
    expected = 5.0 + (2.0 - 1.0) ** 2 + (1.0 - 3.0) ** 2
    assert gaussian_frechet_distance(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    cov_a, cov_b = m @ m.T + np.eye(4), np.cov(rng.normal(size=(10, 4)), rowvar=False)
    cross = np.trace(scipy.linalg.sqrtm(cov_a @ cov_b)).real                # non-commuting: scipy's sqrtm
    expected = np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    assert gaussian_frechet_distance(np.zeros(4), cov_a, np.zeros(4), cov_b) == pytest.approx(expected, rel=1e-10)
    assert gaussian_frechet_distance(np.ones(4), cov_a, np.ones(4), cov_a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_fits_mean_and_unbiased_covariance():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 3)), 2.0 * rng.normal(size=(40, 3)) + 1.0
    expected = gaussian_frechet_distance(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a[:, :1], b[:, :1]) > 0                     # one feature works too
    with pytest.raises(ValueError, match=r"frechet_distance: expected features_a \(N_a, D\).*\(50, 3\) and \(40, 2\)"):
        frechet_distance(a, b[:, :2])
    with pytest.raises(ValueError, match=r"gaussian_frechet_distance: expected means \(D,\)"):
        gaussian_frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
